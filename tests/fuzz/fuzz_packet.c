/* SPDX-License-Identifier: MIT */
/*
 * Probe packets come from the network.  Two ways in:
 *  - raw bytes straight into the decoder (magic, version, size, MAC checks);
 *  - with the first byte odd, the remaining bytes become a header that gets
 *    a valid MAC before decoding, so the fuzzer also reaches the field checks
 *    and the replay window that only authentic packets get to.
 */
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "agent/packet.h"

static const uint8_t key[32] = "netelect-fuzz-key-0123456789abc";
static struct netelect_replay replay;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct netelect_pkt p;
    uint8_t buf[NETELECT_PKT_LEN + 64];

    if (size && (data[0] & 1)) {
        size_t n = size - 1 < NETELECT_PKT_HDR_LEN ? size - 1 : NETELECT_PKT_HDR_LEN;
        memset(buf, 0, sizeof buf);
        memcpy(buf, "NEPK", 4);
        memcpy(buf + 4, data + 1, n > 4 ? n - 4 : 0);
        crypto_auth_hmacsha512256(buf + NETELECT_PKT_HDR_LEN, buf, NETELECT_PKT_HDR_LEN, key);
        data = buf;
        size = NETELECT_PKT_LEN;
    }
    int rc = agent_pkt_decode(data, size, key, &p);
    if (rc == 0) {
        (void)agent_replay_check(&replay, p.sender_inc, p.seq);
        uint8_t again[NETELECT_PKT_LEN];
        /* What decodes must re-encode to the same authentic bytes. */
        if (agent_pkt_encode(&p, key, again) != 0 || memcmp(again, data, NETELECT_PKT_LEN))
            __builtin_trap();
    }
    (void)agent_pkt_err_name(rc);
    return 0;
}
