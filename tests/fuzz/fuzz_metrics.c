/* SPDX-License-Identifier: MIT */
/*
 * `netelect stats --format=prometheus` renders whatever JSON the control
 * socket sent back: any object must give well-formed exposition text, with
 * every label value escaped whatever bytes it holds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/metrics.h"

/* One sample line: name, optional {label="escaped",...}, a space, a value. */
static int sample_ok(const char *p, const char *end)
{
    if (strncmp(p, "netelect_", 9))
        return 0;
    while (p < end && *p != '{' && *p != ' ')
        p++;
    if (p < end && *p == '{') {
        p++;
        for (;;) {
            while (p < end && *p != '=')
                p++;
            if (end - p < 2 || p[1] != '"')
                return 0;
            for (p += 2; p < end && *p != '"'; p++)
                if (*p == '\\' && (++p == end || (*p != '\\' && *p != '"' && *p != 'n')))
                    return 0;
            if (p == end)
                return 0;
            p++; /* closing quote */
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p == end || *p != '}')
                return 0;
            p++;
            break;
        }
    }
    return p < end && *p == ' ' && p + 1 < end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if (!j)
        return 0;
    char *text = NULL;
    size_t len = 0;
    if (agent_metrics_render(j, &text, &len) == 0) {
        if (strlen(text) != len || !len || text[len - 1] != '\n')
            __builtin_trap();
        for (const char *p = text, *nl; p < text + len; p = nl + 1) {
            nl = memchr(p, '\n', (size_t)(text + len - p));
            if (!nl)
                __builtin_trap();
            if (!strncmp(p, "# HELP netelect_", 16) || !strncmp(p, "# TYPE netelect_", 16))
                continue;
            if (!sample_ok(p, nl))
                __builtin_trap();
        }
        free(text);
    }
    json_decref(j);
    return 0;
}
