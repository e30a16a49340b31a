/* SPDX-License-Identifier: MIT */
/*
 * The node table (open addressing by id), the probe heap (a binary min-heap
 * of next-event times: one timerfd serves thousands of peers), channels, and
 * the change detection that decides when the view is republished.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/clock.h"
#include "agent/log.h"

static size_t hash_id(uint64_t id)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdull;
    id ^= id >> 33;
    return (size_t)id;
}

struct node *agent_node_find(struct agent *a, uint64_t id)
{
    if (!a->tab_cap)
        return NULL;
    for (size_t i = hash_id(id) & (a->tab_cap - 1);; i = (i + 1) & (a->tab_cap - 1)) {
        struct node *n = a->tab[i];
        if (!n)
            return NULL;
        if (n->id == id)
            return n;
    }
}

static void tab_insert(struct agent *a, struct node *n)
{
    size_t i = hash_id(n->id) & (a->tab_cap - 1);
    while (a->tab[i])
        i = (i + 1) & (a->tab_cap - 1);
    a->tab[i] = n;
}

struct node *agent_node_get(struct agent *a, uint64_t id)
{
    struct node *n = agent_node_find(a, id);
    if (n)
        return n;
    if ((a->n_nodes + 1) * 2 > a->tab_cap) {
        size_t cap = a->tab_cap ? a->tab_cap * 2 : 64;
        struct node **old = a->tab;
        size_t old_cap = a->tab_cap;
        a->tab = calloc(cap, sizeof(struct node *));
        if (!a->tab)
            DIE("out of memory growing the node table to %zu", cap);
        a->tab_cap = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i])
                tab_insert(a, old[i]);
        free(old);
    }
    n = calloc(1, sizeof *n);
    if (!n)
        DIE("out of memory adding node %#llx", (unsigned long long)id);
    n->id = id;
    n->heap_idx = SIZE_MAX;
    /* The peer's replay window is per (our incarnation, seq): a node removed
     * and added again within one incarnation must not restart at seq 1, or
     * the peer drops every probe as a replay.  Monotonic microseconds exceed
     * any seq sent before (one probe per microsecond is far beyond us). */
    n->tx_seq = agent_now_ns() / 1000u;
    tab_insert(a, n);
    a->n_nodes++;
    agent_node_changed(a, n);
    return n;
}

/* ---- peer addresses ------------------------------------------------------------- */

void agent_addr_key(const struct sockaddr_storage *ss, socklen_t len,
                        uint8_t k[NETELECT_ADDR_KEY_LEN])
{
    memset(k, 0, NETELECT_ADDR_KEY_LEN);
    if (ss->ss_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)ss;
        k[10] = k[11] = 0xff;
        memcpy(k + 12, &v4->sin_addr, 4);
        memcpy(k + 16, &v4->sin_port, 2);
    } else if (ss->ss_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)ss;
        memcpy(k, &v6->sin6_addr, 16);
        memcpy(k + 16, &v6->sin6_port, 2);
    }
}

static size_t key_hash(const uint8_t *k)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < NETELECT_ADDR_KEY_LEN; i++)
        h = (h ^ k[i]) * 1099511628211ull;
    return (size_t)(h ^ h >> 29);
}

static size_t paddr_slot(const struct agent *a, const uint8_t *k)
{
    size_t mask = a->paddr_cap - 1;
    size_t i = key_hash(k) & mask;
    while (a->paddr[i].refs && memcmp(a->paddr[i].k, k, NETELECT_ADDR_KEY_LEN))
        i = (i + 1) & mask;
    return i;
}

bool agent_addr_known(const struct agent *a, const struct sockaddr_storage *ss, socklen_t len)
{
    if (!a->paddr_n)
        return false;
    uint8_t k[NETELECT_ADDR_KEY_LEN];
    agent_addr_key(ss, len, k);
    return a->paddr[paddr_slot(a, k)].refs != 0;
}

static void paddr_add(struct agent *a, const struct node *n)
{
    uint8_t k[NETELECT_ADDR_KEY_LEN];
    agent_addr_key(&n->addr, n->addrlen, k);
    if ((a->paddr_n + 1) * 2 > a->paddr_cap) {
        size_t cap = a->paddr_cap ? a->paddr_cap * 2 : 64;
        struct peer_addr *old = a->paddr;
        size_t old_cap = a->paddr_cap;
        a->paddr = calloc(cap, sizeof *a->paddr);
        if (!a->paddr)
            DIE("out of memory growing the peer address table to %zu", cap);
        a->paddr_cap = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].refs)
                a->paddr[paddr_slot(a, old[i].k)] = old[i];
        free(old);
    }
    struct peer_addr *e = &a->paddr[paddr_slot(a, k)];
    if (!e->refs) {
        memcpy(e->k, k, sizeof k);
        a->paddr_n++;
    }
    e->refs++;
}

static void paddr_del(struct agent *a, const struct node *n)
{
    uint8_t k[NETELECT_ADDR_KEY_LEN];
    agent_addr_key(&n->addr, n->addrlen, k);
    if (!a->paddr_cap)
        return;
    size_t i = paddr_slot(a, k), mask = a->paddr_cap - 1;
    if (!a->paddr[i].refs || --a->paddr[i].refs)
        return;
    a->paddr_n--;
    for (size_t j = (i + 1) & mask; a->paddr[j].refs; j = (j + 1) & mask) {
        size_t h = key_hash(a->paddr[j].k) & mask;
        bool movable = i <= j ? (h <= i || h > j) : (h <= i && h > j);
        if (movable) {
            a->paddr[i] = a->paddr[j];
            a->paddr[j].refs = 0;
            i = j;
        }
    }
}

/* ---- heap ---------------------------------------------------------------- */

static uint64_t key_of(const struct node *n)
{
    return agent_probe_next(&n->probe);
}

static void heap_swap(struct agent *a, size_t i, size_t j)
{
    struct node *t = a->heap[i];
    a->heap[i] = a->heap[j];
    a->heap[j] = t;
    a->heap[i]->heap_idx = i;
    a->heap[j]->heap_idx = j;
}

static void heap_up(struct agent *a, size_t i)
{
    while (i && key_of(a->heap[(i - 1) / 2]) > key_of(a->heap[i])) {
        heap_swap(a, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct agent *a, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < a->heap_n && key_of(a->heap[l]) < key_of(a->heap[m]))
            m = l;
        if (r < a->heap_n && key_of(a->heap[r]) < key_of(a->heap[m]))
            m = r;
        if (m == i)
            return;
        heap_swap(a, i, m);
        i = m;
    }
}

void agent_heap_fix(struct agent *a, struct node *n)
{
    if (n->heap_idx == SIZE_MAX)
        return;
    heap_up(a, n->heap_idx);
    heap_down(a, n->heap_idx);
}

struct node *agent_heap_top(struct agent *a)
{
    return a->heap_n ? a->heap[0] : NULL;
}

static void heap_remove(struct agent *a, struct node *n)
{
    size_t i = n->heap_idx;
    if (i == SIZE_MAX)
        return;
    a->heap_n--;
    if (i != a->heap_n) {
        a->heap[i] = a->heap[a->heap_n];
        a->heap[i]->heap_idx = i;
        heap_up(a, i);
        heap_down(a, i);
    }
    n->heap_idx = SIZE_MAX;
}

void agent_node_set_addr(struct agent *a, struct node *n, const struct sockaddr_storage *ss,
                             socklen_t len)
{
    bool same = n->probed && n->addrlen == len && !memcmp(&n->addr, ss, len);
    if (same)
        return;
    if (n->probed)
        paddr_del(a, n);
    n->addr = *ss;
    n->addrlen = len;
    paddr_add(a, n);
    if (!n->probed) {
        /* Spread first probes over one interval so a big config does not burst. */
        uint64_t now = agent_now_ns();
        agent_probe_init(&n->probe, now + hash_id(n->id) % (a->probe_params.interval_ns / 4 + 1));
        n->probed = true;
        if (a->heap_n == a->heap_cap) {
            size_t cap = a->heap_cap ? a->heap_cap * 2 : 64;
            void *np = realloc(a->heap, cap * sizeof(struct node *));
            if (!np)
                DIE("out of memory growing the probe heap");
            a->heap = np;
            a->heap_cap = cap;
        }
        n->heap_idx = a->heap_n;
        a->heap[a->heap_n++] = n;
        heap_up(a, n->heap_idx);
    }
    agent_node_changed(a, n);
}

void agent_node_clear_addr(struct agent *a, struct node *n)
{
    if (!n->probed)
        return;
    heap_remove(a, n);
    paddr_del(a, n);
    n->probed = false;
    memset(&n->probe, 0, sizeof n->probe);
    agent_node_changed(a, n);
}

static void node_delete(struct agent *a, struct node *n)
{
    heap_remove(a, n);
    if (n->probed)
        paddr_del(a, n);
    size_t i = hash_id(n->id) & (a->tab_cap - 1);
    while (a->tab[i] != n)
        i = (i + 1) & (a->tab_cap - 1);
    a->tab[i] = NULL;
    /* backward-shift so that probe sequences stay unbroken */
    for (size_t j = (i + 1) & (a->tab_cap - 1); a->tab[j]; j = (j + 1) & (a->tab_cap - 1)) {
        size_t h = hash_id(a->tab[j]->id) & (a->tab_cap - 1);
        bool movable = i <= j ? (h <= i || h > j) : (h <= i && h > j);
        if (movable) {
            a->tab[i] = a->tab[j];
            a->tab[j] = NULL;
            i = j;
        }
    }
    a->n_nodes--;
    free(n->serf_channels);
    free(n);
    agent_mark_structural(a);
}

void agent_node_forget_orig(struct agent *a, struct node *n, unsigned orig)
{
    n->orig &= ~orig;
    if (orig & (ORIG_CFG | ORIG_CTL) && !(n->orig & (ORIG_CFG | ORIG_CTL)))
        agent_node_clear_addr(a, n);
    if (!n->orig)
        node_delete(a, n);
}

/* ---- the published form of a node ------------------------------------------ */

/*
 * RTT hysteresis ([agent] rtt_hysteresis, rtt_hysteresis_min): the RTT to
 * publish for a node last published at `published` whose estimate is now
 * `measured`.  The published value stays put while the estimate is inside
 * the band [published - w, published + w], w = max(published * pct / 100,
 * min_ns), and jumps to the estimate once it leaves it.  So two replicas
 * whose estimates jitter within each other's band keep their published
 * order, while every reader still runs the unchanged rule over the same
 * published numbers; a real move larger than the band is published as it
 * is.  The price: a published RTT can be off from the estimate by up to w,
 * for as long as the estimate stays inside the band.
 */
uint64_t agent_rtt_hold(uint64_t published, uint64_t measured, uint32_t pct, uint64_t min_ns)
{
    if ((!pct && !min_ns) || published == NETELECT_RTT_UNKNOWN || measured == NETELECT_RTT_UNKNOWN)
        return measured;
    /* published * pct / 100 without overflow (pct <= 100) */
    uint64_t w = published / 100 * pct + published % 100 * pct / 100;
    if (w < min_ns)
        w = min_ns;
    uint64_t d = measured > published ? measured - published : published - measured;
    return d <= w ? published : measured;
}

static bool hyst_on(const struct agent *a)
{
    return a->cfg.rtt_hyst_pct || a->cfg.rtt_hyst_min_ns;
}

/*
 * How the sources combine (documented in agent/README.md):
 *  RTT:    operator override > own probes (once measured) > Serf estimate > unknown.
 *  health: operator override; else a probed node is healthy iff probes say so
 *          and Serf does not say failed/left; a Serf-only node is healthy iff
 *          Serf says alive; a node known only as a channel member is unhealthy.
 */
struct netelect_wnode agent_node_view(const struct agent *a, const struct node *n)
{
    struct netelect_wnode w = {.id = n->id, .rtt_ns = NETELECT_RTT_UNKNOWN,
                               .rtt_raw_ns = NETELECT_RTT_UNKNOWN, .source = NETELECT_SRC_NONE};
    if (n->probed && n->probe.samples) {
        w.rtt_ns = n->probe.srtt_ns;
        w.rtt_raw_ns = n->probe.raw_ns;
        w.rtt_err_ns = n->probe.rttvar_ns;
        w.source = NETELECT_SRC_PROBE;
    } else if (n->serf_has_rtt) {
        w.rtt_ns = n->serf_rtt_ns;
        w.rtt_raw_ns = n->serf_rtt_ns;
        w.rtt_err_ns = n->serf_err_ns;
        w.source = NETELECT_SRC_SERF;
    }
    if (n->rtt_ovr) {
        w.rtt_ns = n->rtt_ovr_ns > NETELECT_RTT_MAX_MEASURED ? NETELECT_RTT_MAX_MEASURED
                                                             : n->rtt_ovr_ns;
        w.source = NETELECT_SRC_OPERATOR;
    } else if (hyst_on(a) && n->pub_valid && n->pub.source == w.source) {
        /* Measured figures only (an operator's value is meant exactly), and
         * only against a value from the same source; raw and error stay live. */
        w.rtt_ns = agent_rtt_hold(n->pub.rtt_ns, w.rtt_ns, a->cfg.rtt_hyst_pct,
                                      a->cfg.rtt_hyst_min_ns);
    }
    if (n->health_ovr)
        w.healthy = n->health_ovr_val;
    else if (n->probed)
        w.healthy = n->probe.healthy && !(n->serf_known && !n->serf_alive);
    else if (n->serf_known)
        w.healthy = n->serf_alive;
    uint64_t h = n->heard_ns;
    if (n->probe.last_heard_ns > h)
        h = n->probe.last_heard_ns;
    if (n->serf_heard_ns > h)
        h = n->serf_heard_ns;
    w.last_heard_ns = h;
    return w;
}

void agent_mark_dirty(struct agent *a, bool hard)
{
    if (hard) {
        if (!a->dirty_hard)
            a->dirty_since_ns = agent_now_ns();
        a->dirty_hard = true;
    }
    else
        a->dirty_soft = true;
}

void agent_mark_structural(struct agent *a)
{
    a->dirty_struct = true;
    agent_mark_dirty(a, true);
}

/* n's measurements differ from what the segment holds: the next publish,
 * if it is a delta, carries n.  Not needed while a full publish is owed
 * (it rebuilds every node and empties the list). */
static void pub_queue(struct agent *a, struct node *n)
{
    if (a->dirty_struct || n->pub_queued)
        return;
    if (a->n_pub_changed == a->cap_pub_changed) {
        size_t cap = a->cap_pub_changed ? a->cap_pub_changed * 2 : 64;
        void *np = realloc(a->pub_changed, cap * sizeof *a->pub_changed);
        if (!np)
            DIE("out of memory listing %zu changed nodes", cap);
        a->pub_changed = np;
        a->cap_pub_changed = cap;
    }
    a->pub_changed[a->n_pub_changed++] = n->id;
    n->pub_queued = true;
}

/* Health, source, membership and large RTT moves go out within
 * publish_min_interval; small RTT drifts and last-heard times ride on the
 * next heartbeat, so thousands of peers do not force a publish per reply. */
void agent_node_changed(struct agent *a, struct node *n)
{
    if (!n->pub_valid) {
        /* not in the segment yet: a node added since the last publish */
        agent_mark_structural(a);
        return;
    }
    struct netelect_wnode w = agent_node_view(a, n);
    const struct netelect_wnode *p = &n->pub;
    /* field by field: memcmp would compare the struct's padding */
    const bool drift = w.rtt_ns != p->rtt_ns || w.rtt_raw_ns != p->rtt_raw_ns ||
                       w.rtt_err_ns != p->rtt_err_ns || w.last_heard_ns != p->last_heard_ns;
    if (!drift && w.healthy == p->healthy && w.source == p->source)
        return;
    pub_queue(a, n);
    if (w.healthy != p->healthy || w.source != p->source ||
        (w.rtt_ns == NETELECT_RTT_UNKNOWN) != (p->rtt_ns == NETELECT_RTT_UNKNOWN)) {
        agent_mark_dirty(a, true);
        return;
    }
    if (w.rtt_ns != p->rtt_ns) {
        uint64_t d = w.rtt_ns > p->rtt_ns ? w.rtt_ns - p->rtt_ns : p->rtt_ns - w.rtt_ns;
        /* Under hysteresis a published RTT moves only by more than its band:
         * always a move worth publishing at once. */
        if (w.source == NETELECT_SRC_OPERATOR || hyst_on(a) ||
            (double)d * 100.0 > (double)p->rtt_ns * a->cfg.rtt_change_pct) {
            agent_mark_dirty(a, true);
            return;
        }
    }
    agent_mark_dirty(a, false);
}

/* ---- channels ------------------------------------------------------------------ */

struct chan *agent_chan_find(struct agent *a, const char *name)
{
    for (size_t i = 0; i < a->n_chans; i++)
        if (!strcmp(a->chans[i].name, name))
            return &a->chans[i];
    return NULL;
}

struct chan *agent_chan_get(struct agent *a, const char *name)
{
    struct chan *c = agent_chan_find(a, name);
    if (c)
        return c;
    if (a->n_chans == a->cap_chans) {
        size_t cap = a->cap_chans ? a->cap_chans * 2 : 8;
        void *np = realloc(a->chans, cap * sizeof *a->chans);
        if (!np)
            DIE("out of memory growing the channel table");
        a->chans = np;
        a->cap_chans = cap;
    }
    c = &a->chans[a->n_chans++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    agent_mark_structural(a);
    return c;
}

/* ---- membership sets ------------------------------------------------------------------ */

static size_t set_slot(const struct chan *c, uint64_t id)
{
    size_t mask = c->set_cap - 1;
    size_t i = hash_id(id) & mask;
    while (c->set[i] && c->m[c->set[i] - 1].id != id)
        i = (i + 1) & mask;
    return i; /* id's slot, or the empty slot where it would go */
}

static int set_grow(struct chan *c, size_t want)
{
    if (c->set_cap >= 2 * want)
        return 0;
    size_t cap = c->set_cap ? c->set_cap : 16;
    while (cap < 2 * want)
        cap *= 2;
    uint32_t *ns = calloc(cap, sizeof *ns);
    if (!ns)
        return -ENOMEM;
    free(c->set);
    c->set = ns;
    c->set_cap = cap;
    for (size_t j = 0; j < c->n; j++) /* n > 0 means m holds n members */
        c->set[set_slot(c, c->m[j].id)] = (uint32_t)(j + 1); // NOLINT(clang-analyzer-core.NullDereference)
    return 0;
}

/* Empties slot i and shifts the rest of its probe run back (no tombstones). */
static void set_delete(struct chan *c, size_t i)
{
    size_t mask = c->set_cap - 1;
    c->set[i] = 0;
    for (size_t j = (i + 1) & mask; c->set[j]; j = (j + 1) & mask) {
        size_t h = hash_id(c->m[c->set[j] - 1].id) & mask;
        bool movable = i <= j ? (h <= i || h > j) : (h <= i && h > j);
        if (movable) {
            c->set[i] = c->set[j];
            c->set[j] = 0;
            i = j;
        }
    }
}

struct member *agent_chan_member(const struct chan *c, uint64_t id)
{
    if (!c->set_cap)
        return NULL;
    uint32_t v = c->set[set_slot(c, id)];
    return v ? &c->m[v - 1] : NULL;
}

/* Removes m[j] (the last member moves into its place, as before the set). */
static void member_remove_at(struct agent *a, struct chan *c, size_t j)
{
    set_delete(c, set_slot(c, c->m[j].id));
    size_t last = c->n - 1;
    if (j != last) {
        c->m[j] = c->m[last];
        c->set[set_slot(c, c->m[j].id)] = (uint32_t)(j + 1);
    }
    c->n--;
    agent_mark_structural(a);
}

int agent_chan_add_member(struct agent *a, struct chan *c, uint64_t id, unsigned orig)
{
    struct member *m = agent_chan_member(c, id);
    if (m) {
        m->orig |= orig;
        return 0;
    }
    if (c->n >= UINT32_MAX - 1)
        return -ENOSPC;
    if (set_grow(c, c->n + 1) < 0)
        return -ENOMEM;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        void *np = realloc(c->m, cap * sizeof *c->m);
        if (!np)
            return -ENOMEM;
        c->m = np;
        c->cap = cap;
    }
    /* m is non-NULL here: n < cap, or it was just grown (the analyser
     * does not know that cap > 0 implies m). */
    c->m[c->n++] = (struct member){id, orig}; // NOLINT(clang-analyzer-core.NullDereference)
    c->set[set_slot(c, id)] = (uint32_t)c->n;
    agent_mark_structural(a);
    return 0;
}

void agent_chan_remove_member(struct agent *a, struct chan *c, uint64_t id)
{
    struct member *m = agent_chan_member(c, id);
    if (m)
        member_remove_at(a, c, (size_t)(m - c->m));
}

void agent_chan_remove(struct agent *a, struct chan *c)
{
    free(c->m);
    free(c->set);
    size_t i = (size_t)(c - a->chans);
    a->chans[i] = a->chans[--a->n_chans];
    /* No stale copy of the moved channel's member array past the end. */
    memset(&a->chans[a->n_chans], 0, sizeof a->chans[a->n_chans]);
    agent_mark_structural(a);
}

void agent_chan_forget_orig(struct agent *a, unsigned orig)
{
    for (size_t i = 0; i < a->n_chans;) {
        struct chan *c = &a->chans[i];
        for (size_t j = 0; j < c->n;) {
            c->m[j].orig &= ~orig;
            if (!c->m[j].orig) {
                member_remove_at(a, c, j); /* moves the last member to j: recheck j */
            } else {
                j++;
            }
        }
        if (!c->n)
            agent_chan_remove(a, c); /* moves the last channel to i: recheck i */
        else
            i++;
    }
}

/* ---- drain --------------------------------------------------------------------------------- */

static size_t drained_idx(const struct agent *a, const char *name)
{
    for (size_t i = 0; i < a->n_drained; i++)
        if (!strcmp(a->drained[i], name))
            return i;
    return SIZE_MAX;
}

bool agent_drained(const struct agent *a, const char *name)
{
    return a->drain_all || drained_idx(a, name) != SIZE_MAX;
}

int agent_drain(struct agent *a, const char *name, bool on)
{
    int changed = 0;
    if (!name) {
        changed = a->drain_all != on || (!on && a->n_drained);
        a->drain_all = on;
        if (!on)
            a->n_drained = 0;
    } else {
        size_t i = drained_idx(a, name);
        if (on && i == SIZE_MAX) {
            if (a->n_drained == a->cap_drained) {
                size_t cap = a->cap_drained ? a->cap_drained * 2 : 4;
                void *np = realloc(a->drained, cap * sizeof *a->drained);
                if (!np)
                    return -ENOMEM;
                a->drained = np;
                a->cap_drained = cap;
            }
            snprintf(a->drained[a->n_drained++], sizeof a->drained[0], "%s", name);
            changed = 1;
        } else if (!on && i != SIZE_MAX) {
            memmove(a->drained[i], a->drained[i + 1], (a->n_drained - i - 1) * sizeof a->drained[0]);
            a->n_drained--;
            changed = 1;
        }
    }
    if (changed)
        agent_mark_structural(a);
    return changed;
}

/* ---- limits ------------------------------------------------------------------------------- */

int agent_limit_nodes(const struct agent *a, size_t adding, char *err, size_t errlen)
{
    if (a->n_nodes + adding <= a->cfg.max_nodes)
        return 0;
    snprintf(err, errlen, "node limit reached: %zu nodes known, adding %zu would exceed "
                          "[limits] nodes = %u", a->n_nodes, adding, (unsigned)a->cfg.max_nodes);
    return -ENOSPC;
}

int agent_limit_chans(const struct agent *a, size_t adding, char *err, size_t errlen)
{
    if (a->n_chans + adding <= a->cfg.max_chans)
        return 0;
    snprintf(err, errlen, "channel limit reached: %zu channels, adding %zu would exceed "
                          "[limits] channels = %u", a->n_chans, adding, (unsigned)a->cfg.max_chans);
    return -ENOSPC;
}

int agent_limit_members(const struct agent *a, const struct chan *c, size_t adding, char *err,
                            size_t errlen)
{
    size_t have = c ? c->n : 0;
    if (have + adding <= a->cfg.max_members)
        return 0;
    snprintf(err, errlen, "member limit reached: channel '%s' has %zu members, adding %zu would "
                          "exceed [limits] members = %u", c ? c->name : "(new)", have, adding,
             (unsigned)a->cfg.max_members);
    return -ENOSPC;
}

int agent_node_get_limited(struct agent *a, uint64_t id, struct node **out, char *err,
                               size_t errlen)
{
    struct node *n = agent_node_find(a, id);
    if (!n) {
        int r = agent_limit_nodes(a, 1, err, errlen);
        if (r < 0)
            return r;
        n = agent_node_get(a, id);
    }
    *out = n;
    return 0;
}

int agent_chan_get_limited(struct agent *a, const char *name, struct chan **out, char *err,
                               size_t errlen)
{
    struct chan *c = agent_chan_find(a, name);
    if (!c) {
        int r = agent_limit_chans(a, 1, err, errlen);
        if (r < 0)
            return r;
        c = agent_chan_get(a, name);
    }
    *out = c;
    return 0;
}

int agent_chan_add_member_limited(struct agent *a, struct chan *c, uint64_t id, unsigned orig,
                                      char *err, size_t errlen)
{
    if (!agent_chan_member(c, id)) {
        int r = agent_limit_members(a, c, 1, err, errlen);
        if (r < 0)
            return r;
    }
    int r = agent_chan_add_member(a, c, id, orig);
    if (r == -ENOMEM)
        snprintf(err, errlen, "out of memory adding a member to channel '%s'", c->name);
    return r;
}

void agent_tables_free(struct agent *a)
{
    for (size_t i = 0; i < a->tab_cap; i++)
        if (a->tab[i]) {
            free(a->tab[i]->serf_channels);
            free(a->tab[i]);
        }
    free(a->tab);
    free(a->heap);
    for (size_t i = 0; i < a->n_chans; i++) {
        free(a->chans[i].m);
        free(a->chans[i].set);
    }
    free(a->chans);
    free(a->drained);
    free(a->buckets);
    free(a->paddr);
    free(a->pub_changed);
}
