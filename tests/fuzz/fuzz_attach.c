/* SPDX-License-Identifier: MIT */
/*
 * Attaching to a segment: a reader must survive whatever bytes are in
 * /dev/shm.  The base is a real segment the writer published (a few nodes
 * and channels); each input is a list of patches applied to a copy of it
 * before the reader attaches and exercises every read API.  Patch record:
 * u32 offset (LE, taken modulo the size), u8 length, then that many bytes.
 * A record with length 0 truncates the file at the offset instead.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <netelect.h>

#include "shm/path.h"
#include "shm/writer.h"

static uint8_t *base;
static size_t base_len;
static char target[64];
static struct netelect__shm_paths tp;

static void cleanup(void)
{
    unlink(tp.path);
    unlink(tp.lock);
    unlink(tp.readers);
}

static int read_all(const char *path, uint8_t **out, size_t *len)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return -1;
    *len = (size_t)st.st_size;
    *out = malloc(*len);
    size_t got = 0;
    while (*out && got < *len) {
        ssize_t r = read(fd, *out + got, *len - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    return *out && got == *len ? 0 : -1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char name[64];
    snprintf(name, sizeof name, "netelect-fuzzbase-%d", (int)getpid());
    snprintf(target, sizeof target, "netelect-fuzz-%d", (int)getpid());
    struct netelect_writer_config cfg = {
        .name = name, .group = (gid_t)-1, .self_id = 2,
        .max_nodes = 16, .max_chans = 4, .max_members = 32, .slots = 2,
    };
    struct netelect_writer *w;
    if (netelect__writer_open(&cfg, &w) != 0) {
        fprintf(stderr, "fuzz_attach: cannot create the base segment\n");
        abort();
    }
    const struct netelect_wnode nodes[] = {
        {1, 500, 480, 20, 1000, 1, NETELECT_SRC_PROBE},
        {2, 0, 0, 0, 1000, 1, NETELECT_SRC_PROBE},
        {3, NETELECT_RTT_UNKNOWN, NETELECT_RTT_UNKNOWN, 0, 0, 1, NETELECT_SRC_NONE},
        {4, 700, 700, 0, 900, 0, NETELECT_SRC_SERF},
    };
    const uint64_t m1[] = {1, 2, 3, 4}, m2[] = {3, 4, 9};
    const struct netelect_wchan chans[] = {{"alpha", m1, 4}, {"beta", m2, 3}};
    if (netelect__writer_publish(w, nodes, 4, chans, 2) != 0 ||
        netelect__writer_publish(w, nodes, 3, chans, 1) != 0)
        abort();
    struct netelect__shm_paths bp;
    netelect__shm_paths(name, &bp);
    if (read_all(bp.path, &base, &base_len) != 0)
        abort();
    netelect__writer_close(w, false);
    unlink(bp.path);
    unlink(bp.lock);
    unlink(bp.readers);
    netelect__shm_paths(target, &tp);
    /* The reader trusts a segment owned by the owner of its lock file. */
    int fd = open(tp.lock, O_CREAT | O_WRONLY, 0644);
    if (fd < 0)
        abort();
    close(fd);
    atexit(cleanup);
    return 0;
}

static int count_node(void *ctx, const struct netelect_node_info *n)
{
    (void)n;
    ++*(int *)ctx;
    return 0;
}

static int count_chan(void *ctx, const char *name, const uint64_t *members, size_t n)
{
    volatile uint64_t sink = 0;
    for (size_t i = 0; i < n; i++)
        sink += members[i];
    (void)sink;
    *(int *)ctx += name[0] != 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *seg = malloc(base_len);
    size_t len = base_len;
    memcpy(seg, base, base_len);
    while (size >= 5) {
        uint32_t off;
        memcpy(&off, data, 4);
        size_t n = data[4];
        data += 5;
        size -= 5;
        off %= (uint32_t)len;
        if (n == 0) {
            len = off;
            if (!len)
                break;
            continue;
        }
        if (n > size)
            n = size;
        if (n > len - off)
            n = len - off;
        memcpy(seg + off, data, n);
        data += n;
        size -= n;
    }
    int fd = open(tp.path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0 || write(fd, seg, len) != (ssize_t)len)
        abort();
    close(fd);
    free(seg);

    struct netelect_view *v;
    if (netelect_view_open(target, &v) == 0) {
        struct netelect_result r;
        uint64_t ids[8];
        size_t cnt;
        struct netelect_view_status st = {.size = sizeof st};
        struct netelect_node_info ni;
        int k = 0;
        (void)netelect_view_elect(v, "alpha", 2, &r);
        (void)netelect_view_elect(v, "beta", 7, &r);
        (void)netelect_view_elect(v, "nope", 7, &r);
        (void)netelect_view_rank(v, "alpha", 1, ids, 8, &cnt);
        (void)netelect_view_rank(v, "beta", 1, ids, 1, &cnt);
        (void)netelect_view_generation(v);
        (void)netelect_view_self(v);
        (void)netelect_view_status(v, &st);
        (void)netelect_view_node(v, 3, &ni);
        (void)netelect_view_node(v, 42, &ni);
        (void)netelect_view_foreach_node(v, count_node, &k);
        (void)netelect_view_foreach_channel(v, count_chan, &k);
        netelect_view_close(v);
    }
    return 0;
}
