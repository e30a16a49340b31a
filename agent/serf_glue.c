/* SPDX-License-Identifier: MIT */
/*
 * netelectd <-> Serf (serf_glue.h): compiled only when the Serf RPC client
 * (agent/serf/) is built, and started only with [serf] enabled = yes.
 *
 * Mapping (documented in agent/README.md):
 *  - a member's id tag (default "nid") names the node; members without one
 *    are not ours and are ignored;
 *  - its channel tag (default "netelect-channels", comma-separated) makes it
 *    a member of those channels (origin SERF; this host's own member adds
 *    self);
 *  - alive -> Serf says up; leaving/failed -> Serf says down (the node stays
 *    in its channels, unhealthy);
 *  - left (graceful leave: member-leave, or status left in a snapshot) ->
 *    out of the channels Serf put it in, and forgotten unless configured,
 *    added over the control socket or listed in a config/control channel
 *    (then kept, Serf says down);
 *  - reap -> the node is forgotten unless configured or added over the
 *    control socket;
 *  - coordinates give an RTT with source SERF, used only while no direct
 *    probe measurement exists (probes are real round trips, Vivaldi is an
 *    estimate) and never over an operator override.
 *
 * Trust (docs/serf.md, "Trust"): the client sends nothing, the auth key
 * least of all, to an RPC listener that root, this process's uid or
 * [serf] rpc_uid does not own; it reports an id only for the one member
 * holding it (this host's id only for this host's own member, the one
 * `stats` names), at most [serf] max_nodes of them; Serf creates no channel
 * past [serf] max_channels, and [limits] apply as to the control socket.
 */

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/clock.h"
#include "agent/evfd.h"
#include "agent/log.h"
#include "agent/serf/serf.h"
#include "agent/serf_glue.h"

/* At most one line per SERF_LOG_EVERY_NS for each kind of refusal, with
 * the number suppressed in between: a hostile gossip peer must not be able
 * to flood the log. */
#define SERF_LOG_EVERY_NS (10ull * 1000000000ull)
enum { SERF_LOG_SELF, SERF_LOG_DUP, SERF_LOG_CAP, SERF_LOG_NODES, SERF_LOG_CHANS, SERF_LOG_N };
static struct {
    uint64_t next_ns, suppressed;
} serf_log_rl[SERF_LOG_N];

/* Whether a line of this kind may be logged now; *suppressed gets the
 * number held back since the last one. */
static bool serf_log_ok(int kind, uint64_t *suppressed)
{
    uint64_t now = agent_now_ns();
    if (now < serf_log_rl[kind].next_ns) {
        serf_log_rl[kind].suppressed++;
        return false;
    }
    serf_log_rl[kind].next_ns = now + SERF_LOG_EVERY_NS;
    *suppressed = serf_log_rl[kind].suppressed;
    serf_log_rl[kind].suppressed = 0;
    return true;
}

/* Whether `name` is one of the comma-separated channels in `tag`. */
static bool serf_tag_has(const char *tag, const char *name)
{
    if (!tag)
        return false;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", tag);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (!strcmp(agent_trim(t), name))
            return true;
    return false;
}

/* Takes away Serf's part in id's channel memberships, except in the channels
 * that `keep` (a channel tag, or NULL for none) still lists.  A member left
 * with no origin goes, and so does a channel emptied that way (config and
 * control memberships are untouched, as are channels they emptied). */
static void serf_chan_drop(struct agent *a, uint64_t id, const char *keep)
{
    for (size_t i = 0; i < a->n_chans;) {
        struct chan *c = &a->chans[i];
        bool removed_chan = false;
        for (size_t j = 0; j < c->n; j++) {
            if (c->m[j].id != id || !(c->m[j].orig & ORIG_SERF))
                continue;
            if (serf_tag_has(keep, c->name))
                break;
            c->m[j].orig &= ~(unsigned)ORIG_SERF;
            if (!c->m[j].orig) {
                agent_chan_remove_member(a, c, id);
                if (!c->n) {
                    agent_chan_remove(a, c); /* moves the last channel to i */
                    removed_chan = true;
                }
            }
            agent_mark_structural(a);
            break;
        }
        if (!removed_chan)
            i++;
    }
}

static void serf_chan_join(struct agent *a, uint64_t id, const char *tag)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", tag);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        t = agent_trim(t);
        if (!agent_valid_chan_name(t)) {
            LOG_D("serf: member %#llx: ignoring invalid channel name '%s'", (unsigned long long)id, t);
            continue;
        }
        char err[200];
        uint64_t sup;
        struct chan *c = agent_chan_find(a, t);
        if (!c && a->n_chans >= a->cfg.serf_max_chans) {
            if (serf_log_ok(SERF_LOG_CHANS, &sup))
                LOGA_W(id, NULL, t, "serf: member %#llx: not creating channel '%s': %zu channels, "
                      "[serf] max_channels = %u (%llu more like this suppressed)",
                      (unsigned long long)id, t, a->n_chans, (unsigned)a->cfg.serf_max_chans,
                      (unsigned long long)sup);
            continue;
        }
        int r = c ? 0 : agent_chan_get_limited(a, t, &c, err, sizeof err);
        if (r == 0)
            r = agent_chan_add_member_limited(a, c, id, ORIG_SERF, err, sizeof err);
        if (r == -ENOMEM)
            DIE("out of memory adding a Serf channel member");
        if (r < 0 && serf_log_ok(SERF_LOG_CHANS, &sup))
            LOGA_W(id, NULL, t, "serf: member %#llx: not joining channel '%s': %s (%llu more like this "
                  "suppressed)", (unsigned long long)id, t, err, (unsigned long long)sup);
    }
}

/* Whether any channel still lists id (whatever put it there). */
static bool serf_chan_refs(const struct agent *a, uint64_t id)
{
    for (size_t i = 0; i < a->n_chans; i++)
        for (size_t j = 0; j < a->chans[i].n; j++)
            if (a->chans[i].m[j].id == id)
                return true;
    return false;
}

static void serf_member_cb(void *ctx, enum netelect_serf_event ev, const struct netelect_serf_member *m)
{
    struct agent *a = ctx;
    if (!m->has_id || !m->node_id)
        return;
    uint64_t id = m->node_id;
    /* A graceful leave is final for Serf's part: the member asked to go, so
     * it leaves the channels Serf put it in, like a reap.  A failure is not:
     * a failed member stays where it is, unhealthy.  Nor is `leaving`, which
     * the status poll reports as EV_LEAVE: the member has not gone yet and
     * its leave may still end as a failure, so it stays, unhealthy, until
     * Serf says left. */
    bool gone = ev == NETELECT_SERF_EV_REAP || m->status == NETELECT_SERF_LEFT ||
                (ev == NETELECT_SERF_EV_LEAVE && m->status != NETELECT_SERF_LEAVING);
    const char *chans = gone ? NULL : m->channels;
    serf_chan_drop(a, id, chans);
    if (chans)
        serf_chan_join(a, id, chans);
    if (id == a->self)
        return;
    struct node *n = agent_node_find(a, id);
    if (ev == NETELECT_SERF_EV_REAP) {
        if (n) {
            n->serf_known = n->serf_alive = n->serf_has_rtt = false;
            agent_node_changed(a, n);
            agent_node_forget_orig(a, n, ORIG_SERF);
        }
        return;
    }
    if (gone && !n)
        return; /* a member we never had left: nothing to forget */
    if (!n) {
        char err[200];
        uint64_t sup;
        if (agent_node_get_limited(a, id, &n, err, sizeof err) < 0) {
            if (serf_log_ok(SERF_LOG_NODES, &sup))
                LOG_W("serf: member %s (%#llx) not added: %s (%llu more like this suppressed)",
                      m->name ? m->name : "?", (unsigned long long)id, err,
                      (unsigned long long)sup);
            serf_chan_drop(a, id, NULL); /* no channel lists a node that does not exist */
            return;
        }
    }
    bool was_alive = n->serf_known && n->serf_alive;
    n->orig |= ORIG_SERF;
    n->serf_known = true;
    n->serf_alive = m->status == NETELECT_SERF_ALIVE;
    if (n->serf_alive)
        n->serf_heard_ns = agent_now_ns();
    free(n->serf_channels);
    n->serf_channels = chans ? strdup(chans) : NULL;
    if (gone) {
        /* Forgotten unless configured, added over the control socket or
         * still listed in a channel (config or control): then it stays,
         * unhealthy as far as Serf is concerned (Serf says it left). */
        n->serf_has_rtt = false;
        LOGA_I(id, NULL, NULL, "serf: member %s (%#llx) left%s", m->name ? m->name : "?", (unsigned long long)id,
              n->orig & (ORIG_CFG | ORIG_CTL) || serf_chan_refs(a, id)
                  ? ": out of its Serf channels, kept (configured or in a channel)"
                  : ": forgotten");
        agent_node_changed(a, n);
        if (!(n->orig & (ORIG_CFG | ORIG_CTL)) && !serf_chan_refs(a, id))
            agent_node_forget_orig(a, n, ORIG_SERF);
        return;
    }
    if (was_alive != n->serf_alive)
        LOGA_I(id, NULL, NULL, "serf: member %s (%#llx) is %s", m->name ? m->name : "?", (unsigned long long)id,
              n->serf_alive ? "alive" : "not alive (leaving or failed)");
    agent_node_changed(a, n);
}

static void serf_coord_cb(void *ctx, uint64_t node_id, uint64_t rtt_ns, uint64_t err_ns)
{
    struct agent *a = ctx;
    struct node *n = agent_node_find(a, node_id);
    if (!n || node_id == a->self)
        return; /* coordinates alone do not create nodes */
    n->serf_has_rtt = true;
    n->serf_rtt_ns = rtt_ns > NETELECT_RTT_MAX_MEASURED ? NETELECT_RTT_MAX_MEASURED : rtt_ns;
    n->serf_err_ns = err_ns;
    agent_node_changed(a, n);
}

static void serf_reject_cb(void *ctx, int why, const struct netelect_serf_member *m)
{
    struct agent *a = ctx;
    int kind = why == NETELECT_SERF_REJECT_SELF_ID  ? SERF_LOG_SELF
               : why == NETELECT_SERF_REJECT_DUP_ID ? SERF_LOG_DUP
                                                    : SERF_LOG_CAP;
    uint64_t sup;
    if (!serf_log_ok(kind, &sup))
        return;
    const char *name = m->name ? m->name : "?";
    unsigned long long id = (unsigned long long)m->node_id;
    if (why == NETELECT_SERF_REJECT_SELF_ID)
        LOG_W("serf: ignoring member %s: its %s tag claims this host's node id %#llx, but this "
              "host's member is %s (%llu more like this suppressed)",
              name, a->cfg.serf_id_tag, id,
              a->serf && agent_serf_self_name(a->serf) ? agent_serf_self_name(a->serf)
                                                           : "not known yet",
              (unsigned long long)sup);
    else if (why == NETELECT_SERF_REJECT_DUP_ID)
        LOG_W("serf: ignoring member %s's node id %#llx: another member holds it (%llu more "
              "like this suppressed)", name, id, (unsigned long long)sup);
    else
        LOG_W("serf: ignoring member %s (%#llx): [serf] max_nodes = %u members already hold "
              "an id (%llu more like this suppressed)", name, id,
              (unsigned)a->cfg.serf_max_nodes, (unsigned long long)sup);
}

static void serf_conn_cb(void *ctx, int up, int err)
{
    struct agent *a = ctx;
    a->serf_up = up;
    if (up) {
        LOG_N("serf: connected to %s", a->cfg.serf_rpc_addr);
        return;
    }
    if (err == -EPERM) {
        struct netelect_serf_stats st;
        agent_serf_stats(a->serf, &st);
        if (st.listener_uid >= 0)
            LOG_E("serf: refusing %s: its listener belongs to uid %lld, not root, uid %u "
                  "(netelectd) or [serf] rpc_uid; nothing was sent, the auth key neither "
                  "(retrying with backoff)", a->cfg.serf_rpc_addr, (long long)st.listener_uid,
                  (unsigned)geteuid());
        else
            LOG_E("serf: refusing %s: its listener is not a socket of this host, so who owns "
                  "it cannot be checked; nothing was sent (set [serf] rpc_uid = any to trust "
                  "a remote RPC address; retrying with backoff)", a->cfg.serf_rpc_addr);
        return;
    }
    LOG_W("serf: connection to %s lost: %s (reconnecting with backoff)", a->cfg.serf_rpc_addr,
          strerror(-err));
}

/* [serf] rpc_uid -> the client's rpc_uids: 0 (done), or -EINVAL logged. */
static int serf_rpc_uids(const struct agent *a, uint32_t uids[2], size_t *n, int *any)
{
    const char *v = a->cfg.serf_rpc_uid;
    *n = 0;
    *any = 0;
    if (!strcmp(v, "any")) {
        *any = 1;
        return 0;
    }
    if (!*v) {
        /* Debian's serf package runs it as root (systemd) or _serf (init.d). */
        static const char *const users[] = {"serf", "_serf"};
        for (size_t i = 0; i < 2; i++) {
            const struct passwd *pw = getpwnam(users[i]);
            if (pw)
                uids[(*n)++] = (uint32_t)pw->pw_uid;
        }
        return 0;
    }
    uint64_t u;
    if (agent_parse_u64(v, &u) == 0) {
        if (u >= UINT32_MAX) {
            LOG_E("serf: [serf] rpc_uid %s is not a valid uid", v);
            return -EINVAL;
        }
        uids[(*n)++] = (uint32_t)u;
        return 0;
    }
    const struct passwd *pw = getpwnam(v);
    if (!pw) {
        LOG_E("serf: [serf] rpc_uid: no user '%s'", v);
        return -EINVAL;
    }
    uids[(*n)++] = (uint32_t)pw->pw_uid;
    return 0;
}

/* The client may replace its socket on reconnect: re-read fd and events
 * after every call, and re-add when the number is reused by a new socket. */
static void serf_sync(struct agent *a)
{
    struct netelect_serf *s = a->serf;
    int fd = agent_serf_fd(s);
    uint32_t evs = agent_serf_events(s);
    struct epoll_event ev = {.events = evs, .data.u64 = EV_TAG(EV_SERF, 0)};
    if (fd != a->serf_fd && a->serf_fd >= 0)
        epoll_ctl(a->ep, EPOLL_CTL_DEL, a->serf_fd, NULL);
    if (fd >= 0) {
        if (epoll_ctl(a->ep, EPOLL_CTL_MOD, fd, &ev) < 0 &&
            epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            LOG_W("serf: epoll_ctl: %s", strerror(errno));
    }
    a->serf_fd = fd;
    a->serf_events = evs;
    agent_timer_arm(a->serf_tfd, agent_serf_next_deadline(s));
}

int agent_serf_start(struct agent *a)
{
    uint32_t uids[2];
    size_t n_uids;
    int any;
    if (serf_rpc_uids(a, uids, &n_uids, &any) < 0)
        return -EINVAL;
    struct netelect_serf_config sc = {
        .rpc_addr = a->cfg.serf_rpc_addr,
        .auth_key = a->cfg.serf_auth_key[0] ? a->cfg.serf_auth_key : NULL,
        .id_tag = a->cfg.serf_id_tag,
        .channel_tag = a->cfg.serf_channel_tag,
        .coord_period_ns = a->cfg.serf_coord_period_ns,
        .status_poll_ns = a->cfg.serf_status_poll_ns, /* UINT64_MAX is the client's "off" too */
        .rpc_uids = uids,
        .n_rpc_uids = n_uids,
        .rpc_uid_any = any,
        .self_id = a->self,
        .max_ids = a->cfg.serf_max_nodes,
    };
    static const struct netelect_serf_callbacks cb = {.member = serf_member_cb,
                                                      .coord = serf_coord_cb,
                                                      .connection = serf_conn_cb,
                                                      .reject = serf_reject_cb};
    struct netelect_serf *s;
    int r = agent_serf_new(&sc, &cb, a, &s);
    if (r < 0) {
        LOG_E("serf: cannot start the RPC client for %s: %s", sc.rpc_addr, strerror(-r));
        return r;
    }
    a->serf = s;
    a->serf_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (a->serf_tfd < 0)
        DIE("timerfd_create: %s", strerror(errno));
    agent_epoll_add(a, a->serf_tfd, EPOLLIN, EV_SERF_T);
    serf_sync(a);
    if (any)
        LOG_W("serf: [serf] rpc_uid = any: the RPC listener's owner is not checked, and the "
              "auth key goes to whoever listens on %s", sc.rpc_addr);
    if (sc.status_poll_ns == NETELECT_SERF_STATUS_POLL_OFF)
        LOG_I("serf: using %s (id tag '%s', channel tag '%s', status poll off)", sc.rpc_addr,
              sc.id_tag, sc.channel_tag);
    else
        LOG_I("serf: using %s (id tag '%s', channel tag '%s', status poll every %llu ms)",
              sc.rpc_addr, sc.id_tag, sc.channel_tag,
              (unsigned long long)(sc.status_poll_ns / 1000000));
    return 0;
}

void agent_serf_io(struct agent *a, uint32_t events)
{
    if (!a->serf)
        return;
    int r = agent_serf_handle(a->serf, events, agent_now_ns());
    if (r < 0)
        LOG_D("serf: %s", strerror(-r));
    serf_sync(a);
}

void agent_serf_timer(struct agent *a)
{
    if (!a->serf)
        return;
    int r = agent_serf_tick(a->serf, agent_now_ns());
    if (r < 0)
        LOG_D("serf: %s", strerror(-r));
    serf_sync(a);
}

void agent_serf_stop(struct agent *a)
{
    if (a->serf)
        agent_serf_free(a->serf);
    a->serf = NULL;
}
