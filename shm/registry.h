/* SPDX-License-Identifier: MIT */
/*
 * The reader registry, /dev/shm/<name>.readers: the grace-period half of the
 * protocol (segment-protocol.md §6).  Readers announce the version they are
 * on in a per-thread, cache-line-sized record; the writer does not reuse a
 * slot that a live reader announces, waits a bounded time when every slot is
 * pinned, and then reuses the oldest anyway (counted in h_forced_reuse; the
 * stuck reader's seq validation catches it).  Safety never depends on the
 * registry: it only keeps healthy readers from being lapped.
 *
 * Liveness is an OFD write lock on byte i of the file held by the process
 * owning record i (the kernel drops it when the process dies), checked
 * together with a random per-process key so that a record index reused by
 * another process is never mistaken for the old owner (no pids involved).
 */
#ifndef SHM_REGISTRY_H
#define SHM_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NETELECT_REG_MAGIC UINT64_C(0x5352444145524E45) /* "ENREADRS" */
#define NETELECT_REG_NPROC 256u
#define NETELECT_REG_NTHREAD 1024u

/* File header (line 0): W = the segment writer, once, before rename. */
struct netelect_reg_hdr {
    uint64_t r_magic;          /* W once; R attach */
    uint16_t r_abi_major, r_abi_minor; /* W once; R attach */
    uint32_t r_nproc;          /* W once; R attach: == NETELECT_REG_NPROC */
    uint32_t r_nthread;        /* W once; R attach: == NETELECT_REG_NTHREAD */
    uint32_t r_pad;
    uint8_t r_incarnation[16]; /* W once; R attach: must equal the segment's */
    uint8_t r_pad2[24];
};
_Static_assert(sizeof(struct netelect_reg_hdr) == 64, "layout");
_Static_assert(offsetof(struct netelect_reg_hdr, r_incarnation) == 24, "layout");

/* One reader process (one line).  Written only by the process that holds
 * the OFD lock on byte `index`; read by the writer and by reclaimers. */
struct netelect_reg_proc {
    _Atomic uint64_t p_key; /* owner: release store (nonce << 16 | index) after locking */
    int32_t p_pid;          /* owner: diagnostics only */
    uint32_t p_pad;
    uint8_t p_pad2[48];
};
_Static_assert(sizeof(struct netelect_reg_proc) == 64, "layout");

/* One reader thread (one line, so no two readers share a line). */
struct netelect_reg_thr {
    /* Claimed by CAS 0 -> proc key (acq_rel); released by its thread (release
     * store 0) or reclaimed by anyone by CAS key -> 0 once the key's process
     * is dead.  Read by the writer (acquire). */
    _Atomic uint64_t t_owner;
    /* The owner thread: release store of the h_current word before reading
     * a slot, release store 0 after.  The writer reads it (acquire) in
     * choose_slot.  No StoreLoad fence: a late announce costs a retry, never
     * safety. */
    _Atomic uint64_t t_announce;
    uint8_t t_pad[48];
};
_Static_assert(sizeof(struct netelect_reg_thr) == 64, "layout");

#define NETELECT_REG_PROC_OFF 64u
#define NETELECT_REG_THR_OFF (NETELECT_REG_PROC_OFF + NETELECT_REG_NPROC * 64u)
#define NETELECT_REG_SIZE (NETELECT_REG_THR_OFF + NETELECT_REG_NTHREAD * 64u)

/* Writer side. */
struct netelect__reg_writer;
int netelect__reg_create(const char *path, const char *dir, const uint8_t inc[16], mode_t mode,
                         gid_t group, struct netelect__reg_writer **out);
/* Bit s set: slot s holds `slot_word[s]` (gen << 8 | s) and a live reader
 * announced exactly that word. */
unsigned netelect__reg_pinned(struct netelect__reg_writer *r, const uint64_t *slot_word,
                              unsigned nslots);
void netelect__reg_writer_close(struct netelect__reg_writer *r);
/* True once someone truncated the registry under the writer (its mapping is
 * zero pages since): the writer should drop it. */
bool netelect__reg_faulted(const struct netelect__reg_writer *r);

/* Reader side (one per attached segment). */
struct netelect__reg_reader;
/* Attaches to the registry of the segment with incarnation `inc`, if the
 * file belongs to `owner` (the segment's owner).
 * @return 0, or -errno (no registry, no permission, another owner: the
 * reader works without it). */
int netelect__reg_attach(const char *path, const uint8_t inc[16], uid_t owner,
                         struct netelect__reg_reader **out);
/* Claims a thread record; NULL when the table is full. */
_Atomic uint64_t *netelect__reg_claim(struct netelect__reg_reader *r);
void netelect__reg_release(struct netelect__reg_reader *r, _Atomic uint64_t *announce);
void netelect__reg_detach(struct netelect__reg_reader *r);

#endif /* SHM_REGISTRY_H */
