/* SPDX-License-Identifier: MIT */
/* The public header must compile alone, first, in strict C17. */
#include <netelect.h>

int main(void)
{
    struct netelect_result r = {NETELECT_NO_ELIGIBLE, 0};
    return netelect_is_self(r) || netelect_peer_winner(r, 0) || NETELECT_RTT_UNKNOWN != UINT64_MAX;
}
