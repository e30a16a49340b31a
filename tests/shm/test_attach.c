/* SPDX-License-Identifier: MIT */
/*
 * Attach validation against corrupt, truncated, foreign and hostile files:
 * every case must give an error (or, for payload garbage, an error or an
 * answer), never a crash, hang or out-of-bounds read.  The mutator is
 * deterministic (a fixed-seed PRNG), so a failure reproduces; run the
 * suite in an ASan+UBSan build to catch out-of-bounds reads that happen to
 * land in mapped memory:
 *   meson setup build-asan -Db_sanitize=address,undefined
 *   meson test -C build-asan --suite shm
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "netelect.h"
#include "shm/layout.h"
#include "shm/writer.h"
#include "tests/shm/helpers.h"

static char src[128], dst[128];
static char dst_path[256];
static uint8_t *good;
static size_t good_len;

/* A valid segment with data, copied into memory; the writer is gone. */
static void setup(void)
{
    t_name(src, sizeof src, "asrc");
    t_name(dst, sizeof dst, "adst");
    t_unlink(src);
    t_unlink(dst);
    t_path(dst_path, sizeof dst_path, dst);
    struct netelect_writer_config cfg = {.name = src, .group = (gid_t)-1, .self_id = 7};
    struct netelect_writer *w;
    cr_assert_eq(netelect__writer_open(&cfg, &w), 0);
    struct netelect_wnode nodes[40];
    uint64_t mem[40];
    for (int i = 0; i < 40; i++) {
        nodes[i] = (struct netelect_wnode){.id = (uint64_t)i + 1, .rtt_ns = (uint64_t)(1000 - i),
                                           .healthy = (uint8_t)(i % 3 != 0)};
        mem[i] = (uint64_t)i + 1;
    }
    struct netelect_wchan chans[] = {{"alpha", mem, 10}, {"beta", mem + 10, 30}, {"g", mem, 40}};
    cr_assert_eq(netelect__writer_publish(w, nodes, 40, chans, 3), 0);
    char p[256];
    t_path(p, sizeof p, src);
    int fd = open(p, O_RDONLY);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    good_len = (size_t)st.st_size;
    good = malloc(good_len);
    cr_assert_eq(pread(fd, good, good_len, 0), (ssize_t)good_len);
    close(fd);
    netelect__writer_close(w, false);
    t_unlink(src);
}

static void teardown(void)
{
    t_unlink(dst);
    free(good);
}

TestSuite(attach, .init = setup, .fini = teardown, .timeout = 60);

static void put(const uint8_t *buf, size_t len, mode_t mode)
{
    unlink(dst_path);
    int fd = open(dst_path, O_CREAT | O_EXCL | O_WRONLY, mode);
    cr_assert_geq(fd, 0);
    cr_assert_eq(fchmod(fd, mode), 0);
    cr_assert_eq(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

static int node_cb(void *ctx, const struct netelect_node_info *n)
{
    (void)n;
    ++*(int *)ctx;
    return 0;
}

static int chan_cb(void *ctx, const char *name, const uint64_t *m, size_t n)
{
    (void)name, (void)m, (void)n;
    ++*(int *)ctx;
    return 0;
}

/* Exercises every read entry point; returns how many succeeded. */
static int exercise(struct netelect_view *v)
{
    int ok = 0, cnt = 0;
    struct netelect_result r;
    struct netelect_node_info ni;
    struct netelect_view_status st = {.size = sizeof st};
    uint64_t ids[64];
    size_t n;
    ok += netelect_view_elect(v, "alpha", 0, &r) == 0;
    ok += netelect_view_elect(v, "beta", 3, &r) == 0;
    ok += netelect_view_elect(v, "nothere", 0, &r) == 0;
    ok += netelect_view_rank(v, "g", 0, ids, 64, &n) == 0;
    ok += netelect_view_node(v, 5, &ni) == 0;
    ok += netelect_view_node(v, 999, &ni) == 0;
    ok += netelect_view_status(v, &st) == 0;
    ok += netelect_view_foreach_node(v, node_cb, &cnt) == 0;
    ok += netelect_view_foreach_channel(v, chan_cb, &cnt) == 0;
    (void)netelect_view_generation(v);
    (void)netelect_view_self(v);
    return ok;
}

static int try_open(void)
{
    struct netelect_view *v = NULL;
    int rc = netelect_view_open(dst, &v);
    if (rc == 0) {
        exercise(v);
        netelect_view_close(v);
    } else {
        cr_assert_null(v);
    }
    return rc;
}

Test(attach, positive_control)
{
    put(good, good_len, 0644);
    struct netelect_view *v;
    cr_assert_eq(netelect_view_open(dst, &v), 0);
    struct netelect_result r;
    cr_assert_eq(netelect_view_elect(v, "alpha", 0, &r), 0);
    cr_assert_eq(r.winner, 9, "id 10 is unhealthy");
    int nok = exercise(v);
    cr_assert_eq(nok, 7, "all but the unknown channel and node: %d", nok);
    netelect_view_close(v);
}

Test(attach, every_identity_byte_is_checked)
{
    /* Bytes [0, 248) are covered by magic/ABI checks, the layout CRC or the
     * CRC field itself: any change must be refused. */
    static const uint8_t masks[] = {0x01, 0x80, 0xff, 0x10};
    uint8_t *b = malloc(good_len);
    for (size_t off = 0; off < offsetof(struct netelect_shm_hdr, h_pad0); off++) {
        for (size_t k = 0; k < sizeof masks; k++) {
            memcpy(b, good, good_len);
            b[off] ^= masks[k];
            put(b, good_len, 0644);
            int rc = try_open();
            cr_assert(rc == NETELECT_ECORRUPT || rc == NETELECT_EVERSION,
                      "offset %zu mask %#x: rc %d (%s)", off, masks[k], rc, netelect_strerror(rc));
        }
    }
    free(b);
}

static void fix_crc(uint8_t *b)
{
    struct netelect_shm_hdr *h = (struct netelect_shm_hdr *)(void *)b;
    h->h_layout_crc = netelect__layout_crc(h);
}

/* A hostile writer that fixes the CRC: every derived field must still
 * equal what the reader computes itself. */
Test(attach, hostile_header_with_valid_crc)
{
    uint8_t *b = malloc(good_len);
    struct netelect_shm_hdr *h = (struct netelect_shm_hdr *)(void *)b;
    for (int i = 0; i < 26; i++) {
        memcpy(b, good, good_len);
        const char *what = "";
        int want = NETELECT_ECORRUPT;
        switch (i) {
        case 0: h->h_slot_count = 0; what = "K=0"; break;
        case 1: h->h_slot_count = 1; what = "K=1"; break;
        case 2: h->h_slot_count = 9; what = "K=9"; break;
        case 3: h->h_slot_count = UINT32_MAX; what = "K=max"; break;
        case 4: h->h_segment_size += 4096; what = "size+"; break;
        case 5: h->h_segment_size -= 4096; what = "size-"; break;
        case 6: h->h_slot_size = 4096; what = "slot small"; break;
        case 7: h->h_slot_off[1] = h->h_slot_off[0]; what = "overlap"; break;
        case 8: h->h_slot_off[2] = h->h_segment_size; what = "past end"; break;
        case 9: h->h_slot_off[0] = 100; what = "unaligned"; break;
        case 10: h->h_max_nodes = UINT32_MAX; what = "nodes huge"; break;
        case 11: h->h_max_members = 0x80000000u; what = "members huge"; break;
        case 12: h->h_max_nodes *= 2; what = "nodes beyond slot"; break;
        case 13: h->h_region_off[NETELECT_RG_NAMES] += 64; what = "region"; break;
        case 14: h->h_node_tab_cap /= 2; what = "tab cap"; break;
        case 15: h->h_chan_tab_cap = 3; what = "tab not pow2"; break;
        case 16: h->h_header_size = 8; what = "header small"; break;
        case 17: h->h_header_size = 1u << 20; what = "header large"; break;
        case 18: h->h_layout_desc ^= 1; what = "layout desc"; want = NETELECT_EVERSION; break;
        case 19: h->h_incompat_flags = 0x80; what = "incompat"; want = NETELECT_EVERSION; break;
        case 20: h->h_abi_major = 2; what = "abi 2"; want = NETELECT_EVERSION; break;
        case 21: h->h_heartbeat_period_ns = 0; what = "hb 0"; break;
        case 22: h->h_max_name_bytes = 12; what = "names unaligned"; break;
        case 23: h->h_slot_off[5] = 4096; what = "unused slot off"; break;
        case 24: h->h_max_chans = 0; what = "no chans"; break;
        case 25: h->h_magic = ~h->h_magic; what = "magic"; break;
        }
        fix_crc(b);
        put(b, good_len, 0644);
        int rc = try_open();
        cr_assert_eq(rc, want, "%s: rc %d (%s)", what, rc, netelect_strerror(rc));
    }
    free(b);
}

Test(attach, live_words)
{
    uint8_t *b = malloc(good_len);
    struct netelect_shm_hdr *h = (struct netelect_shm_hdr *)(void *)b;
    memcpy(b, good, good_len);
    atomic_store(&h->h_state, NETELECT_SHM_INIT);
    put(b, good_len, 0644);
    cr_assert_eq(try_open(), -EAGAIN, "state=init: still initialising");
    atomic_store(&h->h_state, 7);
    put(b, good_len, 0644);
    cr_assert_eq(try_open(), NETELECT_ECORRUPT);
    memcpy(b, good, good_len);
    atomic_store(&h->h_current, (atomic_load(&h->h_current) & ~0xffull) | 200);
    put(b, good_len, 0644);
    cr_assert_eq(try_open(), NETELECT_ECORRUPT, "current names slot 200");
    /* A current word whose generation no slot holds: reads retry and give
     * up, they do not spin or answer from the wrong version. */
    memcpy(b, good, good_len);
    atomic_store(&h->h_current, atomic_load(&h->h_current) + (5u << 8));
    put(b, good_len, 0644);
    struct netelect_view *v;
    cr_assert_eq(netelect_view_open(dst, &v), 0);
    struct netelect_result r;
    cr_assert_eq(netelect_view_elect(v, "alpha", 0, &r), -EAGAIN);
    netelect_view_close(v);
    free(b);
}

Test(attach, truncated_and_empty)
{
    const size_t lens[] = {0, 1, 100, 383, 384, 4095, 4096, 4097, good_len / 2, good_len - 4096,
                           good_len - 1};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        put(good, lens[i], 0644);
        int rc = try_open();
        cr_assert_eq(rc, NETELECT_ECORRUPT, "length %zu: rc %d", lens[i], rc);
    }
    /* Longer than the header says. */
    uint8_t *b = calloc(1, good_len + 4096);
    memcpy(b, good, good_len);
    put(b, good_len + 4096, 0644);
    cr_assert_eq(try_open(), NETELECT_ECORRUPT);
    free(b);
}

Test(attach, foreign_files)
{
    put(good, good_len, 0666);
    cr_assert_eq(try_open(), -EPERM, "group/world-writable");
    put(good, good_len, 0620);
    cr_assert_eq(try_open(), -EPERM, "group-writable");
    put(good, good_len, 0644);
    if (geteuid() == 0) {
        cr_assert_eq(chown(dst_path, 4243, 4243), 0);
        cr_assert_eq(try_open(), -EPERM, "someone else's file");
    }
    /* A symlink to a perfectly good segment. */
    char real[300];
    snprintf(real, sizeof real, "%s.real", dst_path);
    unlink(dst_path);
    put(good, good_len, 0644);
    cr_assert_eq(rename(dst_path, real), 0);
    cr_assert_eq(symlink(real, dst_path), 0);
    cr_assert_eq(try_open(), -EPERM, "symlink");
    unlink(dst_path);
    unlink(real);
    cr_assert_eq(mkdir(dst_path, 0755), 0);
    cr_assert_neq(try_open(), 0, "a directory");
    rmdir(dst_path);
    /* Random bytes of the right size. */
    uint8_t *b = malloc(good_len);
    uint64_t x = 99;
    for (size_t i = 0; i < good_len; i++) {
        x = netelect__mix64(x + i);
        b[i] = (uint8_t)x;
    }
    put(b, good_len, 0644);
    cr_assert_eq(try_open(), NETELECT_ECORRUPT);
    free(b);
}

/*
 * A valid header over garbage payload (a hostile writer, or memory
 * corruption): the seq never moves, so every read "validates" and the
 * bounds checks are all that stand between the reader and a wild access.
 */
Test(attach, garbage_payload)
{
    const struct netelect_shm_hdr *gh = (const struct netelect_shm_hdr *)(const void *)good;
    const unsigned cur_slot = (unsigned)(atomic_load(&gh->h_current) & 0xff);
    const uint64_t so = gh->h_slot_off[cur_slot], ss = gh->h_slot_size;
    uint8_t *b = malloc(good_len);
    uint64_t x = 12345;
    int answered = 0, refused = 0;
    for (int it = 0; it < 400; it++) {
        memcpy(b, good, good_len);
        /* 1..64 random words anywhere in the current slot, or a whole
         * region scrambled every 16th round. */
        x = netelect__mix64(x + (uint64_t)it);
        const int nmut = 1 + (int)(x % 64);
        for (int k = 0; k < nmut; k++) {
            x = netelect__mix64(x + 1);
            uint64_t off = 8 + x % (ss - 16); /* keep s_seq itself */
            x = netelect__mix64(x + 1);
            uint64_t val = (x & 3) == 0 ? UINT64_MAX : (x & 3) == 1 ? (x >> 40) : x;
            memcpy(b + so + (off & ~(uint64_t)7), &val, 8);
        }
        if (it % 16 == 0) {
            uint64_t start = gh->h_region_off[it / 16 % NETELECT_RG_COUNT];
            for (uint64_t o = start; o + 8 <= ss && o < start + 4096; o += 8) {
                x = netelect__mix64(x + o);
                memcpy(b + so + o, &x, 8);
            }
        }
        /* Keep the slot's generation matching h_current half the time, so
         * that the garbage is actually read rather than retried. */
        if (it & 1) {
            uint64_t g = atomic_load(&gh->h_current) >> 8;
            memcpy(b + so + 8, &g, 8);
        }
        put(b, good_len, 0644);
        struct netelect_view *v;
        int rc = netelect_view_open(dst, &v);
        cr_assert_eq(rc, 0, "header untouched, open must work");
        int ok = exercise(v);
        answered += ok;
        refused += 9 - ok;
        netelect_view_close(v);
    }
    free(b);
    cr_log_info("garbage payload: %d answers, %d errors", answered, refused);
    cr_assert_gt(refused, 0, "garbage was never detected: the test did not bite");
}

/* Targeted: each table field set to its worst value. */
Test(attach, targeted_payload)
{
    const struct netelect_shm_hdr *gh = (const struct netelect_shm_hdr *)(const void *)good;
    const unsigned s = (unsigned)(atomic_load(&gh->h_current) & 0xff);
    const uint64_t so = gh->h_slot_off[s];
    uint8_t *b = malloc(good_len);
    struct {
        size_t off;
        uint32_t val;
        const char *what;
    } t[] = {
        {offsetof(struct netelect_shm_slot, s_n_chans), UINT32_MAX, "n_chans"},
        {offsetof(struct netelect_shm_slot, s_chan_tab_mask), UINT32_MAX, "chan mask"},
        {offsetof(struct netelect_shm_slot, s_chan_tab_mask), 0x7fff, "chan mask > cap"},
        {offsetof(struct netelect_shm_slot, s_n_nodes), UINT32_MAX, "n_nodes"},
        {offsetof(struct netelect_shm_slot, s_node_tab_mask), 0x0ffff, "node mask > cap"},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        memcpy(b, good, good_len);
        memcpy(b + so + t[i].off, &t[i].val, 4);
        put(b, good_len, 0644);
        struct netelect_view *v;
        cr_assert_eq(netelect_view_open(dst, &v), 0);
        struct netelect_result r;
        struct netelect_node_info ni;
        int rc1 = netelect_view_elect(v, "alpha", 0, &r);
        int rc2 = netelect_view_node(v, 5, &ni);
        cr_assert(rc1 == NETELECT_ECORRUPT || rc2 == NETELECT_ECORRUPT, "%s: %d %d", t[i].what,
                  rc1, rc2);
        netelect_view_close(v);
    }
    /* Channel records pointing outside the member arrays / name area. */
    const uint64_t chans = gh->h_region_off[NETELECT_RG_CHANS];
    const uint32_t bad[][2] = {{offsetof(struct netelect_shm_chan, c_first), UINT32_MAX},
                               {offsetof(struct netelect_shm_chan, c_n), UINT32_MAX},
                               {offsetof(struct netelect_shm_chan, c_name_off), 0x7ffffff8u},
                               {offsetof(struct netelect_shm_chan, c_name_off), 3}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memcpy(b, good, good_len);
        for (int c = 0; c < 3; c++)
            memcpy(b + so + chans + (size_t)c * sizeof(struct netelect_shm_chan) + bad[i][0],
                   &bad[i][1], 4);
        put(b, good_len, 0644);
        struct netelect_view *v;
        cr_assert_eq(netelect_view_open(dst, &v), 0);
        struct netelect_result r;
        int cnt = 0;
        cr_assert_eq(netelect_view_elect(v, "alpha", 0, &r), NETELECT_ECORRUPT, "case %zu", i);
        cr_assert_eq(netelect_view_foreach_channel(v, chan_cb, &cnt), NETELECT_ECORRUPT);
        netelect_view_close(v);
    }
    free(b);
}
