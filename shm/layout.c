/* SPDX-License-Identifier: MIT */
/*
 * Layout arithmetic and header validation, shared by the writer (which
 * computes) and the reader (which recomputes from the untrusted header and
 * insists on equality, so a hostile header can only describe a layout this
 * very code would have produced).  All arithmetic is overflow-checked.
 */
#include <errno.h>
#include <sys/stat.h>

#include "netelect.h"
#include "shm/layout.h"

static int is_pow2(uint64_t x)
{
    return x && !(x & (x - 1));
}

static uint32_t tab_cap(uint32_t n)
{
    /* >= 2n and a power of two: load factor <= 1/2 keeps probes short. */
    uint32_t c = 16;
    while (c < 2u * n)
        c <<= 1;
    return c;
}

static int add_region(uint64_t *off, uint64_t count, uint64_t elem, uint64_t *region)
{
    uint64_t bytes, end;
    *region = *off;
    if (__builtin_mul_overflow(count, elem, &bytes) || __builtin_add_overflow(*off, bytes, &end) ||
        __builtin_add_overflow(end, (uint64_t)NETELECT_SHM_LINE - 1, &end))
        return -EOVERFLOW;
    *off = end & ~(uint64_t)(NETELECT_SHM_LINE - 1);
    return 0;
}

int netelect__layout_compute(struct netelect_shm_layout *L)
{
    if (L->slot_count < 2 || L->slot_count > NETELECT_SHM_MAX_SLOTS || L->max_nodes == 0 ||
        L->max_nodes > NETELECT_SHM_MAX_NODES || L->max_chans == 0 ||
        L->max_chans > NETELECT_SHM_MAX_CHANS || L->max_members == 0 ||
        L->max_members > NETELECT_SHM_MAX_MEMBERS || L->max_name_bytes == 0 ||
        L->max_name_bytes > NETELECT_SHM_MAX_NAME_BYTES || (L->max_name_bytes & 7))
        return -EINVAL;
    L->node_tab_cap = tab_cap(L->max_nodes);
    L->chan_tab_cap = tab_cap(L->max_chans);

    uint64_t off = sizeof(struct netelect_shm_slot);
    static const uint64_t elem[NETELECT_RG_COUNT] = {
        [NETELECT_RG_NODES] = sizeof(struct netelect_shm_node),
        [NETELECT_RG_NODE_TAB] = sizeof(uint32_t),
        [NETELECT_RG_CHANS] = sizeof(struct netelect_shm_chan),
        [NETELECT_RG_CHAN_TAB] = sizeof(uint32_t),
        [NETELECT_RG_M_IDS] = sizeof(uint64_t),
        [NETELECT_RG_M_RTT] = sizeof(uint64_t),
        [NETELECT_RG_M_HEALTHY] = sizeof(uint8_t),
        [NETELECT_RG_NAMES] = 1,
    };
    const uint64_t count[NETELECT_RG_COUNT] = {
        [NETELECT_RG_NODES] = L->max_nodes,
        [NETELECT_RG_NODE_TAB] = L->node_tab_cap,
        [NETELECT_RG_CHANS] = L->max_chans,
        [NETELECT_RG_CHAN_TAB] = L->chan_tab_cap,
        [NETELECT_RG_M_IDS] = L->max_members,
        [NETELECT_RG_M_RTT] = L->max_members,
        [NETELECT_RG_M_HEALTHY] = L->max_members,
        [NETELECT_RG_NAMES] = L->max_name_bytes,
    };
    for (int r = 0; r < NETELECT_RG_COUNT; r++)
        if (add_region(&off, count[r], elem[r], &L->region_off[r]))
            return -EOVERFLOW;
    uint64_t slot;
    if (__builtin_add_overflow(off, (uint64_t)NETELECT_SHM_PAGE - 1, &slot))
        return -EOVERFLOW;
    L->slot_size = slot & ~(uint64_t)(NETELECT_SHM_PAGE - 1);

    uint64_t pos = NETELECT_SHM_PAGE;
    for (uint32_t i = 0; i < NETELECT_SHM_MAX_SLOTS; i++) {
        if (i >= L->slot_count) {
            L->slot_off[i] = 0;
            continue;
        }
        L->slot_off[i] = pos;
        if (__builtin_add_overflow(pos, L->slot_size, &pos))
            return -EOVERFLOW;
    }
    if (pos > NETELECT_SHM_MAX_SEGMENT)
        return -EOVERFLOW;
    L->segment_size = pos;
    return 0;
}

uint64_t netelect__timens(void)
{
    struct stat st;
    return stat("/proc/self/ns/time", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

uint64_t netelect__pidns(void)
{
    struct stat st;
    return stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

uint64_t netelect__layout_crc(const void *hdr)
{
    const unsigned char *p = hdr;
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < offsetof(struct netelect_shm_hdr, h_layout_crc); i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

int netelect__layout_validate(const struct netelect_shm_hdr *hdr, uint64_t file_size,
                              struct netelect_shm_layout *L)
{
    /* Work on a private copy: the file may change under us. */
    struct netelect_shm_hdr h;
    memset(&h, 0, sizeof h);
    memcpy(&h, hdr, offsetof(struct netelect_shm_hdr, h_current));

    if (h.h_magic != NETELECT_SHM_MAGIC)
        return NETELECT_ECORRUPT;
    if (h.h_abi_major != NETELECT_SHM_ABI_MAJOR)
        return NETELECT_EVERSION;
    if (h.h_header_size < sizeof(struct netelect_shm_hdr) || h.h_header_size > NETELECT_SHM_PAGE)
        return NETELECT_ECORRUPT;
    if (h.h_layout_desc != NETELECT_SHM_LAYOUT_DESC ||
        (h.h_incompat_flags & ~NETELECT_SHM_INCOMPAT_KNOWN))
        return NETELECT_EVERSION;
    if (netelect__layout_crc(&h) != h.h_layout_crc)
        return NETELECT_ECORRUPT;

    memset(L, 0, sizeof *L);
    L->slot_count = h.h_slot_count;
    L->max_nodes = h.h_max_nodes;
    L->max_chans = h.h_max_chans;
    L->max_members = h.h_max_members;
    L->max_name_bytes = h.h_max_name_bytes;
    if (netelect__layout_compute(L))
        return NETELECT_ECORRUPT;
    /* Everything derived must match what this code computes. */
    if (h.h_node_tab_cap != L->node_tab_cap || h.h_chan_tab_cap != L->chan_tab_cap ||
        !is_pow2(h.h_node_tab_cap) || !is_pow2(h.h_chan_tab_cap) ||
        h.h_slot_size != L->slot_size || h.h_segment_size != L->segment_size ||
        h.h_segment_size != file_size)
        return NETELECT_ECORRUPT;
    for (int r = 0; r < NETELECT_RG_COUNT; r++)
        if (h.h_region_off[r] != L->region_off[r])
            return NETELECT_ECORRUPT;
    for (uint32_t i = 0; i < NETELECT_SHM_MAX_SLOTS; i++)
        if (h.h_slot_off[i] != L->slot_off[i])
            return NETELECT_ECORRUPT;
    /* Redundant with the equality above, kept as the rule a reviewer checks:
     * every slot lies inside the file, page-aligned, after the header. */
    for (uint32_t i = 0; i < L->slot_count; i++) {
        uint64_t end;
        if ((L->slot_off[i] % NETELECT_SHM_PAGE) || L->slot_off[i] < NETELECT_SHM_PAGE ||
            __builtin_add_overflow(L->slot_off[i], L->slot_size, &end) || end > file_size)
            return NETELECT_ECORRUPT;
    }
    L->self_id = h.h_self_id;
    L->heartbeat_period_ns = h.h_heartbeat_period_ns;
    if (L->heartbeat_period_ns == 0 || L->heartbeat_period_ns > UINT64_C(3600000000000))
        return NETELECT_ECORRUPT;
    L->compat_flags = h.h_compat_flags;
    L->abi_minor = h.h_abi_minor;
    memcpy(L->incarnation, h.h_incarnation, sizeof L->incarnation);
    L->writer_pid = h.h_writer_pid;
    /* Outside the identity copy above (it was padding before ABI 1.1):
     * written once before the file got its name, read here once. */
    L->timens = h.h_abi_minor >= 1 ? hdr->h_timens : 0;
    L->pidns = h.h_abi_minor >= 1 ? hdr->h_pidns : 0;

    uint32_t state = atomic_load_explicit(&hdr->h_state, memory_order_acquire);
    if (state == NETELECT_SHM_INIT)
        return -EAGAIN;
    if (state > NETELECT_SHM_STALLED)
        return NETELECT_ECORRUPT;
    uint64_t cur = atomic_load_explicit(&hdr->h_current, memory_order_acquire);
    if ((cur & 0xff) >= L->slot_count)
        return NETELECT_ECORRUPT;
    return 0;
}
