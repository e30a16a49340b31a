/* SPDX-License-Identifier: MIT */
/*
 * Publishing (publish.h): one function builds the writer's arrays from the
 * agent's tables, for the segment's first version and for every publish
 * after it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>

#include "agent/agent.h"
#include "agent/clock.h"
#include "agent/evfd.h"
#include "agent/log.h"
#include "agent/metrics.h"
#include "agent/publish.h"
#if NETELECT_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif


static int cmp_wnode(const void *x, const void *y)
{
    const struct netelect_wnode *p = x, *q = y;
    return p->id < q->id ? -1 : p->id > q->id;
}

/* The agent's table in the writer's form (the arrays point into each other
 * and into a->chans: valid until the table changes). */
struct view_arrays {
    struct netelect_wnode *nodes;
    size_t n_nodes;
    struct netelect_wchan *chans;
    size_t n_chans;
    uint64_t *members;
    uint8_t *down; /* member_down of drained channels, or NULL */
};

/* Self is always at RTT 0 (it is the caller of its own elections), heard
 * at the publish time, and healthy unless drained: from every channel here,
 * from some channels through member_down (view_build). */
static struct netelect_wnode self_view(const struct agent *a, uint64_t now)
{
    return (struct netelect_wnode){.id = a->self, .rtt_ns = 0, .rtt_raw_ns = 0,
                                   .last_heard_ns = now, .healthy = !a->drain_all,
                                   .source = NETELECT_SRC_PROBE};
}

/* Both the first version (at start-up, before the segment exists) and every
 * full publish come from here, so the two can never disagree on what the
 * table means.  Every node's published form is recomputed, so the list of
 * changed nodes starts empty. */
static void view_build(struct agent *a, uint64_t now, struct view_arrays *v)
{
    size_t nn = 1 + a->n_nodes;
    struct netelect_wnode *nodes = malloc(nn * sizeof *nodes);
    struct netelect_wchan *chans = calloc(a->n_chans ? a->n_chans : 1, sizeof *chans);
    size_t total_members = 0;
    for (size_t i = 0; i < a->n_chans; i++)
        total_members += a->chans[i].n;
    uint64_t *members = malloc((total_members ? total_members : 1) * sizeof *members);
    if (!nodes || !chans || !members)
        DIE("out of memory building a view of %zu nodes", nn);
    nodes[0] = self_view(a, now);
    uint8_t *down = NULL;
    if (a->n_drained && !a->drain_all) {
        down = calloc(total_members ? total_members : 1, 1);
        if (!down)
            DIE("out of memory building a view of %zu members", total_members);
    }
    size_t k = 1, healthy = nodes[0].healthy != 0;
    for (size_t i = 0; i < a->tab_cap; i++) {
        struct node *n = a->tab[i];
        if (!n)
            continue;
        n->pub = agent_node_view(a, n);
        n->pub_valid = true;
        n->pub_queued = false;
        healthy += n->pub.healthy != 0;
        nodes[k++] = n->pub;
    }
    a->n_pub_changed = 0;
    a->pub_healthy = healthy;
    qsort(nodes, k, sizeof *nodes, cmp_wnode);
    size_t off = 0;
    for (size_t i = 0; i < a->n_chans; i++) {
        chans[i].name = a->chans[i].name;
        chans[i].members = members + off;
        chans[i].n_members = (uint32_t)a->chans[i].n;
        const struct member *me = down ? agent_chan_member(&a->chans[i], a->self) : NULL;
        if (me && agent_drained(a, a->chans[i].name)) {
            down[off + (size_t)(me - a->chans[i].m)] = 1;
            chans[i].member_down = down + off;
        }
        for (size_t j = 0; j < a->chans[i].n; j++)
            members[off++] = a->chans[i].m[j].id;
    }
    *v = (struct view_arrays){.nodes = nodes, .n_nodes = k, .chans = chans,
                              .n_chans = a->n_chans, .members = members, .down = down};
}

/*
 * Publishes, as a delta (netelect__writer_update), the nodes listed in
 * a->pub_changed and self (its last-heard time is the publish time): the
 * segment then holds exactly the view view_build() would build now, since
 * every other node's published form is unchanged (nothing structural
 * happened, and a node whose measurements move is listed).  0 with the
 * listed nodes' published forms committed; or the writer's refusal
 * (-ENOENT, -ESTALE, ...), which changes nothing: publish the whole view.
 */
static int publish_delta(struct agent *a, uint64_t now)
{
    size_t cap = 1 + a->n_pub_changed;
    struct netelect_wnode *nodes = malloc(cap * sizeof *nodes);
    struct node **of = malloc(cap * sizeof(struct node *));
    if (!nodes || !of)
        DIE("out of memory building a delta of %zu nodes", cap);
    nodes[0] = self_view(a, now);
    size_t k = 1;
    for (size_t i = 0; i < a->n_pub_changed; i++) {
        struct node *n = agent_node_find(a, a->pub_changed[i]);
        if (!n || !n->pub_queued)
            continue; /* removed (a full publish is owed anyway) */
        of[k] = n;
        nodes[k++] = agent_node_view(a, n);
    }
    int r = netelect__writer_update(a->writer, nodes, k);
    if (!r) {
        for (size_t i = 1; i < k; i++) {
            struct node *n = of[i];
            a->pub_healthy += (size_t)(nodes[i].healthy != 0) - (size_t)(n->pub.healthy != 0);
            n->pub = nodes[i];
            n->pub_queued = false;
        }
        a->n_pub_changed = 0;
    }
    free(nodes);
    free(of);
    return r;
}

static void view_free(struct view_arrays *v)
{
    free(v->nodes);
    free(v->chans);
    free(v->members);
    free(v->down);
}

#define PUBLISH_LOG_NS UINT64_C(10000000000)

/* systemd (Type=notify, agent/README.md "systemd unit"): READY=1 once the
 * first full view is published, then STATUS= whenever its one-line summary
 * changes.  Without NOTIFY_SOCKET, sd_notify() does nothing. */
static void notify_published(size_t n_nodes, size_t healthy, size_t n_chans, int r)
{
#if NETELECT_HAVE_SYSTEMD
    static bool ready;
    static char last[160];
    char st[160];
    if (r < 0)
        snprintf(st, sizeof st, "publishing fails: %s", strerror(-r));
    else
        snprintf(st, sizeof st, "publishing: %zu nodes (%zu healthy), %zu channels", n_nodes,
                 healthy, n_chans);
    if (!strcmp(st, last) && (ready || r < 0))
        return;
    snprintf(last, sizeof last, "%s", st);
    sd_notifyf(0, "%sSTATUS=%s", !ready && r >= 0 ? "READY=1\n" : "", st);
    ready = ready || r >= 0;
#else
    (void)n_nodes;
    (void)healthy;
    (void)n_chans;
    (void)r;
#endif
}

/*
 * A delta when only node measurements changed since the last good publish
 * (a->dirty_struct clear), else, or when the writer refuses the delta, the
 * whole view.  Readers cannot tell the two apart: both make the same
 * version, one generation on.
 */
void agent_publish(struct agent *a)
{
    uint64_t now = agent_now_ns();
    const size_t n_nodes = 1 + a->n_nodes, n_chans = a->n_chans;
    /* a->pub_changed[] keeps its ids after a delta empties the list: the
     * metrics' leader tracking reads them below */
    const size_t n_changed = a->n_pub_changed;
    const bool delta = !a->dirty_struct && publish_delta(a, now) == 0;
    int r = 0;
    if (!delta) {
        struct view_arrays v;
        view_build(a, now, &v);
        r = netelect__writer_publish(a->writer, v.nodes, v.n_nodes, v.chans, v.n_chans);
        view_free(&v);
    }
    /* A failing publish is retried every heartbeat: say so once, then at
     * most every PUBLISH_LOG_NS with the number of failures in between. */
    static uint64_t fail_logged_ns, fails_unlogged;
    const unsigned fails = netelect__writer_failures(a->writer);
    if (r < 0) {
        a->stats.publish_err++;
        if (fails == NETELECT_WRITER_STALL_AFTER)
            LOG_E("publishing has failed %u times in a row (%s): the segment is marked "
                  "stalled, readers go fail-static and then get ESTALE until a publish succeeds",
                  fails, strerror(-r));
        else if (fails == 1 || now - fail_logged_ns >= PUBLISH_LOG_NS) {
            LOG_W("publishing the view (%zu nodes, %zu channels) failed: %s (%" PRIu64
                  " more failures since the last message)",
                  n_nodes, n_chans, strerror(-r), fails_unlogged);
            fail_logged_ns = now;
            fails_unlogged = 0;
        } else
            fails_unlogged++;
        /* keep it dirty: the next heartbeat retries, with the whole view
         * (the segment does not hold the one a delta would start from) */
        a->dirty_soft = true;
        a->dirty_struct = true;
    } else {
        if (fail_logged_ns) {
            LOG_N("publishing works again; the segment is live");
            fail_logged_ns = 0;
            fails_unlogged = 0;
        }
        a->stats.publishes++;
        a->stats.publishes_delta += delta;
        uint64_t d = UINT64_MAX;
        if (a->dirty_hard && a->dirty_since_ns) {
            d = agent_now_ns() - a->dirty_since_ns;
            a->stats.pub_delay_last_ns = d;
            if (d > a->stats.pub_delay_max_ns)
                a->stats.pub_delay_max_ns = d;
        }
        agent_metrics_published(a, agent_now_ns() - now, d, delta, a->pub_changed, n_changed);
        a->dirty_hard = a->dirty_soft = a->dirty_struct = false;
    }
    a->last_pub_ns = now;
    notify_published(n_nodes, a->pub_healthy, n_chans, r);
}

void agent_maybe_publish(struct agent *a)
{
    if (!a->dirty_hard)
        return;
    uint64_t now = agent_now_ns();
    uint64_t due = a->last_pub_ns + a->cfg.publish_min_interval_ns;
    if (!a->last_pub_ns || now >= due) {
        agent_publish(a);
        if (a->pub_armed) {
            agent_timer_arm(a->pub_tfd, 0);
            a->pub_armed = false;
        }
    } else if (!a->pub_armed) {
        agent_timer_arm(a->pub_tfd, due);
        a->pub_armed = true;
    }
}

int agent_publish_open(struct agent *a, gid_t gid)
{
    /* The table first, so the segment's first version is a real view: a
     * reader that moves to it mid-restart keeps finding its channels and,
     * through the inherited state, the same leaders. */
    struct view_arrays first;
    view_build(a, agent_now_ns(), &first);
    struct netelect_writer_config wc = {
        .name = a->cfg.shm_name, .mode = (mode_t)a->cfg.shm_mode, .group = gid,
        .self_id = a->self, .heartbeat_period_ns = a->cfg.heartbeat_ns,
        .initial_nodes = first.nodes, .n_initial_nodes = first.n_nodes,
        .initial_chans = first.chans, .n_initial_chans = first.n_chans};
    int r = netelect__writer_open(&wc, &a->writer);
    view_free(&first);
    /* Deltas follow a good publish of the loop: the first one after
     * start-up writes the whole view. */
    a->dirty_struct = true;
    if (r < 0) {
        LOG_E("cannot open segment '%s': %s%s", a->cfg.shm_name, strerror(-r),
              r == -EBUSY   ? " (another netelectd is publishing it)"
              : r == -EPERM ? " (a file of another user is in the way and cannot be removed:"
                              " run as root, or use a directory only the agent's user can write,"
                              " e.g. --shm /run/netelect/view; or [segment] group is set and the"
                              " agent may not chown: it needs CAP_CHOWN)"
                            : "");
        return r;
    }
    struct netelect_writer_report wrep;
    netelect__writer_report(a->writer, &wrep);
    if (wrep.squatters)
        LOG_W("removed %u file(s) owned by uid %u from the segment's names (%s, .lock, "
              ".readers): another user tried to publish or block the view",
              wrep.squatters, (unsigned)wrep.squatter_uid, a->cfg.shm_name);
    if (wrep.stale_tmps)
        LOG_N("removed %u temporary file(s) a killed netelectd left beside the segment",
              wrep.stale_tmps);
    return 0;
}

void agent_heartbeat(struct agent *a, bool watchdog)
{
    if (a->dirty_soft || a->dirty_hard)
        agent_publish(a);
    if (netelect__writer_heartbeat(a->writer) < 0)
        a->stats.heartbeat_err++;
    else
        a->stats.heartbeats++;
#if NETELECT_HAVE_SYSTEMD
    /* WatchdogSec=: the loop is alive (a hung loop stops this) */
    if (watchdog)
        sd_notify(0, "WATCHDOG=1");
#else
    (void)watchdog;
#endif
}

void agent_heartbeat_arm(struct agent *a)
{
    struct itimerspec hb = {
        .it_interval = {(time_t)(a->cfg.heartbeat_ns / 1000000000u), (long)(a->cfg.heartbeat_ns % 1000000000u)},
        .it_value = {(time_t)(a->cfg.heartbeat_ns / 1000000000u), (long)(a->cfg.heartbeat_ns % 1000000000u)}};
    timerfd_settime(a->hb_tfd, 0, &hb, NULL);
}
