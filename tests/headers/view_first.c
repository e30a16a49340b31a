/* SPDX-License-Identifier: MIT */
/* <netelect/view.h> included on its own must bring everything it uses. */
#include <netelect/view.h>

int main(void)
{
    struct netelect_view *v = 0;
    struct netelect_result r = {NETELECT_NO_ELIGIBLE, 0};
    (void)v;
    return r.outcome;
}
