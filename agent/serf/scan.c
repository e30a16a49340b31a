/* SPDX-License-Identifier: MIT */
/*
 * Bounds checking of a msgpack byte stream before msgpack-c parses it.
 *
 * msgpack-c 4.0's C unpacker has no limits: an array header that claims
 * 2^32-1 elements makes it allocate 24 bytes per element at once, and a
 * string header that claims 4 GiB makes it buffer until the bytes arrive.
 * This scanner follows only the structure (type bytes and lengths, never
 * values) of the same bytes, and rejects a stream as soon as a declared size
 * exceeds the limits in serf_internal.h.  It keeps a stack of the items left
 * in each open container, so it knows where each top-level object ends and
 * can bound the size of one object rather than of the whole stream.
 */
#include "agent/serf/serf_internal.h"

#include <errno.h>
#include <string.h>

void agent_serf_scan_init(struct netelect_serf_scan *sc)
{
    memset(sc, 0, sizeof(*sc));
}

static uint64_t be(const unsigned char *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* The current item (scalar, payload or empty container) is complete: count
 * it against its container, closing every container it completes. */
static void item_done(struct netelect_serf_scan *sc)
{
    for (;;) {
        if (sc->depth == 0) {
            sc->objects++;
            sc->obj_bytes = 0;
            sc->obj_cost = 0;
            return;
        }
        if (--sc->rem[sc->depth - 1] > 0)
            return;
        sc->depth--;
    }
}

/* Total header length for the leading byte `b` (including b), 0 if invalid. */
static unsigned header_len(unsigned char b)
{
    if (b <= 0xbf || b >= 0xe0)
        return 1; /* fixint, fixmap, fixarray, fixstr, negative fixint */
    switch (b) {
    case 0xc0: case 0xc2: case 0xc3: return 1;
    case 0xc1: return 0; /* never used */
    case 0xc4: case 0xd9: return 2;
    case 0xc5: case 0xda: case 0xdc: case 0xde: return 3;
    case 0xc6: case 0xdb: case 0xdd: case 0xdf: return 5;
    case 0xc7: return 3;  /* ext 8: len, type */
    case 0xc8: return 4;  /* ext 16 */
    case 0xc9: return 6;  /* ext 32 */
    case 0xca: return 5;
    case 0xcb: return 9;
    case 0xcc: case 0xd0: return 2;
    case 0xcd: case 0xd1: return 3;
    case 0xce: case 0xd2: return 5;
    case 0xcf: case 0xd3: return 9;
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: return 2; /* fixext: type */
    default: return 0;
    }
}

static int open_container(struct netelect_serf_scan *sc, uint64_t n, int is_map)
{
    if (n > (is_map ? NETELECT_SERF_MAX_MAP : NETELECT_SERF_MAX_ARRAY))
        return -EMSGSIZE;
    sc->obj_cost += n * (is_map ? 48u : 24u);
    if (sc->obj_cost > NETELECT_SERF_MAX_MSG_COST)
        return -EMSGSIZE;
    if (n == 0) {
        item_done(sc);
        return 0;
    }
    if (sc->depth >= NETELECT_SERF_MAX_DEPTH)
        return -EMSGSIZE;
    sc->rem[sc->depth++] = is_map ? 2 * n : n;
    return 0;
}

static int payload(struct netelect_serf_scan *sc, uint64_t len)
{
    if (len > NETELECT_SERF_MAX_STR)
        return -EMSGSIZE;
    if (len == 0)
        item_done(sc);
    else
        sc->skip = len;
    return 0;
}

/* A whole header is in sc->hdr: act on it. */
static int header(struct netelect_serf_scan *sc)
{
    const unsigned char *h = sc->hdr;
    unsigned char b = h[0];

    if (b <= 0x7f || b >= 0xe0)
        return item_done(sc), 0;
    if (b <= 0x8f)
        return open_container(sc, b & 0x0f, 1);
    if (b <= 0x9f)
        return open_container(sc, b & 0x0f, 0);
    if (b <= 0xbf)
        return payload(sc, b & 0x1f);
    switch (b) {
    case 0xc4: case 0xd9: return payload(sc, h[1]);
    case 0xc5: case 0xda: return payload(sc, be(h + 1, 2));
    case 0xc6: case 0xdb: return payload(sc, be(h + 1, 4));
    case 0xc7: return payload(sc, h[1]);
    case 0xc8: return payload(sc, be(h + 1, 2));
    case 0xc9: return payload(sc, be(h + 1, 4));
    case 0xd4: return payload(sc, 1);
    case 0xd5: return payload(sc, 2);
    case 0xd6: return payload(sc, 4);
    case 0xd7: return payload(sc, 8);
    case 0xd8: return payload(sc, 16);
    case 0xdc: return open_container(sc, be(h + 1, 2), 0);
    case 0xdd: return open_container(sc, be(h + 1, 4), 0);
    case 0xde: return open_container(sc, be(h + 1, 2), 1);
    case 0xdf: return open_container(sc, be(h + 1, 4), 1);
    default: /* nil, bool, numbers: the header is the whole item */
        item_done(sc);
        return 0;
    }
}

int agent_serf_scan(struct netelect_serf_scan *sc, const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* Each top-level object is bounded as it grows, whatever its shape. */
        if (sc->skip) {
            size_t take = (uint64_t)(n - i) < sc->skip ? n - i : (size_t)sc->skip;
            sc->obj_bytes += take;
            if (sc->obj_bytes > NETELECT_SERF_MAX_MSG_BYTES)
                return -EMSGSIZE;
            sc->skip -= take;
            i += take;
            if (sc->skip == 0)
                item_done(sc);
            continue;
        }
        if (++sc->obj_bytes > NETELECT_SERF_MAX_MSG_BYTES)
            return -EMSGSIZE;
        unsigned char b = p[i++];
        if (sc->hdr_need == 0) {
            unsigned len = header_len(b);
            if (len == 0)
                return -EBADMSG;
            sc->hdr[0] = b;
            sc->hdr_have = 1;
            sc->hdr_need = len;
        } else {
            sc->hdr[sc->hdr_have++] = b;
        }
        if (sc->hdr_have == sc->hdr_need) {
            sc->hdr_need = 0;
            int r = header(sc);
            if (r < 0)
                return r;
        }
    }
    return 0;
}
