/* SPDX-License-Identifier: MIT */
/* Config files are written by operators; a bad one must be a clear error. */
#include <stdint.h>
#include <string.h>

#include "agent/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct netelect_cfg cfg, copy;
    char err[512];

    err[0] = 0;
    int rc = agent_cfg_load_buffer((const char *)data, size, "fuzz.conf", &cfg, err,
                                       sizeof err);
    if (rc == 0) {
        if (agent_cfg_copy(&copy, &cfg) == 0)
            agent_cfg_free(&copy);
        agent_cfg_free(&cfg);
    } else if (!err[0]) {
        __builtin_trap(); /* every rejection explains itself */
    }
    return 0;
}
