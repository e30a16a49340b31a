// SPDX-License-Identifier: MIT
// The public header must compile alone, first, in C++17 (bench/ relies on it).
#include <netelect.h>
#include <netelect/view.h>

int main()
{
    netelect_result r{NETELECT_PEER_WINS, 7};
    uint64_t peer = 0;
    return !(netelect_peer_winner(r, &peer) && peer == 7 && !netelect_is_self(r));
}
