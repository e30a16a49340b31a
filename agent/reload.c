/* SPDX-License-Identifier: MIT */
/*
 * The running configuration (reload.h): loading it with the command line's
 * overrides, applying its peers and channels to the tables, reloading it on
 * SIGHUP or `netelect reload`, and seeding the tables at start-up from the
 * view the previous incarnation left.
 */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "agent/agent.h"
#include "agent/clock.h"
#include "agent/log.h"
#include "agent/reload.h"


static void apply_cli_overrides(struct agent *a, struct netelect_cfg *c)
{
    if (a->opt_shm)
        snprintf(c->shm_name, sizeof c->shm_name, "%s", a->opt_shm);
    if (a->opt_control)
        snprintf(c->control_path, sizeof c->control_path, "%s", a->opt_control);
    if (a->opt_listen) {
        snprintf(c->listen, sizeof c->listen, "%s", a->opt_listen);
        agent_parse_addr(c->listen, &c->listen_addr, &c->listen_len, 1);
    }
    if (a->opt_node_id)
        c->node_id = a->opt_node_id;
}

static int load_config(struct agent *a, struct netelect_cfg *c, uint8_t key[NETELECT_KEY_LEN],
                       bool *have_key, char *err, size_t errlen)
{
    int r;
    if (a->cfg_path) {
        r = agent_cfg_load_file(a->cfg_path, c, err, errlen);
        if (r < 0)
            return r;
    } else {
        /* The embedded default: this host alone, one channel "default" whose
         * only replica is itself; no peers, so no key is needed. */
        agent_cfg_defaults(c);
        static const uint64_t self_member = 0;
        c->chans = calloc(1, sizeof *c->chans);
        if (!c->chans)
            return -ENOMEM;
        c->n_chans = c->cap_chans = 1;
        snprintf(c->chans[0].name, sizeof c->chans[0].name, "default");
        c->chans[0].members = malloc(sizeof(uint64_t));
        if (!c->chans[0].members)
            return -ENOMEM;
        c->chans[0].members[0] = self_member;
        c->chans[0].n = c->chans[0].cap = 1;
    }
    apply_cli_overrides(a, c);
    *have_key = false;
    if (c->key_file[0]) {
        r = agent_key_load(c->key_file, key, err, errlen);
        if (r < 0) {
            if (a->cfg_path && c->key_file_line) {
                char tmp[NETELECT_CFG_ERR_LEN];
                snprintf(tmp, sizeof tmp, "%s:%d: %s", a->cfg_path, c->key_file_line, err);
                snprintf(err, errlen, "%s", tmp);
            }
            agent_cfg_free(c);
            return r;
        }
        *have_key = true;
    }
    return 0;
}

static struct netelect_probe_params probe_params(const struct netelect_cfg *c)
{
    return (struct netelect_probe_params){
        .interval_ns = c->probe_interval_ns, .timeout_ns = c->probe_timeout_ns,
        .misses = c->probe_misses, .flap_threshold = c->flap_threshold,
        .flap_rise = c->flap_rise, .flap_half_life_ns = c->flap_half_life_ns};
}

void agent_apply_membership(struct agent *a, const struct netelect_cfg *c)
{
    for (size_t i = 0; i < a->tab_cap; i++) {
        struct node *n = a->tab[i];
        if (!n || !(n->orig & ORIG_CFG))
            continue;
        bool keep = false;
        for (size_t j = 0; j < c->n_peers; j++)
            keep |= c->peers[j].id == n->id;
        if (!keep) {
            agent_node_forget_orig(a, n, ORIG_CFG);
            i = (size_t)-1; /* the table may have shifted: rescan */
        }
    }
    for (size_t j = 0; j < c->n_peers; j++) {
        struct node *n = agent_node_get(a, c->peers[j].id);
        n->orig |= ORIG_CFG;
        agent_node_set_addr(a, n, &c->peers[j].addr, c->peers[j].addrlen);
    }
    agent_chan_forget_orig(a, ORIG_CFG);
    for (size_t i = 0; i < c->n_chans; i++) {
        struct chan *ch = agent_chan_get(a, c->chans[i].name);
        for (size_t j = 0; j < c->chans[i].n; j++) {
            uint64_t id = c->chans[i].members[j] ? c->chans[i].members[j] : a->self;
            if (agent_chan_add_member(a, ch, id, ORIG_CFG) < 0)
                DIE("out of memory adding channel members");
        }
    }
}

static int resolve_group(const char *name, gid_t *out, char *err, size_t errlen, const char *what)
{
    *out = (gid_t)-1;
    if (!name[0])
        return 0;
    struct group *g = getgrnam(name);
    if (!g) {
        uint64_t v;
        if (agent_parse_u64(name, &v) == 0) {
            *out = (gid_t)v;
            return 0;
        }
        snprintf(err, errlen, "%s: unknown group '%s'", what, name);
        return -ENOENT;
    }
    *out = g->gr_gid;
    return 0;
}

int agent_reload(struct agent *a, char *err, size_t errlen)
{
    a->stats.reloads++;
    if (!a->cfg_path) {
        LOG_I("reload: running on the embedded default configuration; nothing to reload");
        return 0;
    }
    struct netelect_cfg c;
    uint8_t key[NETELECT_KEY_LEN];
    bool have_key;
    int r = load_config(a, &c, key, &have_key, err, errlen);
    if (r < 0)
        goto bad;
    const char *what = NULL;
    if ((c.node_id ? c.node_id : a->self) != a->self)
        what = "node_id";
    else if (strcmp(c.listen, a->cfg.listen))
        what = "listen";
    else if (strcmp(c.control_path, a->cfg.control_path))
        what = "control";
    else if (strcmp(c.shm_name, a->cfg.shm_name) || c.shm_mode != a->cfg.shm_mode ||
             strcmp(c.shm_group, a->cfg.shm_group) || c.heartbeat_ns != a->cfg.heartbeat_ns)
        what = "[segment] name, mode, group or heartbeat";
    else if (strcmp(c.control_group, a->cfg.control_group))
        what = "control_group";
    else if (have_key != a->have_key)
        what = "whether a key_file is set";
    else if (c.serf_enabled != a->cfg.serf_enabled ||
             strcmp(c.serf_rpc_addr, a->cfg.serf_rpc_addr))
        what = "[serf] enabled or rpc_addr";
    else if (strcmp(c.metrics_listen, a->cfg.metrics_listen))
        what = "[metrics] listen";
    if (what) {
        snprintf(err, errlen, "%s: %s cannot change on reload; restart netelectd", a->cfg_path,
                 what);
        agent_cfg_free(&c);
        r = -EINVAL;
        goto bad;
    }
    memcpy(a->key, key, sizeof key);
    sodium_memzero(key, sizeof key);
    a->probe_params = probe_params(&c);
    agent_log_set_level(c.log_level);
    agent_apply_membership(a, &c);
    agent_cfg_free(&a->cfg);
    a->cfg = c;
    /* The published form of every node may depend on the configuration
     * (RTT hysteresis): the next publish, whenever it comes, rebuilds them
     * all. */
    a->dirty_struct = true;
    LOG_N("reloaded %s: %zu peers, %zu channels", a->cfg_path, c.n_peers, c.n_chans);
    return 0;
bad:
    a->stats.reload_failures++;
    LOG_E("reload failed, keeping the running configuration: %s", err);
    return r;
}

/* ---- start-up: continuity with the previous incarnation ------------------------------ */

struct inherit {
    struct agent *a;
    uint64_t now;
    bool fresh;             /* the old view was current enough to vouch for health */
    size_t nodes, healthy;
};

/*
 * Seeds one configured, probed peer from the old view.  Only figures our own
 * probes made are taken: an operator's override lived in the old process,
 * and Serf resends its estimates when the client connects.  The estimate
 * goes into the probe filter as if the old process had kept running, so
 * the next replies refine it rather than jump.  Health is taken only as a
 * prober would still hold it: the time since the peer was last heard
 * counts as misses already (a whole probe interval each), so an inherited
 * "healthy" ends no later than a live measurement of a peer that went
 * quiet at that moment would end; a reply resets the run as usual.
 */
static int inherit_node(void *ctx, const struct netelect_node_info *o)
{
    struct inherit *c = ctx;
    struct agent *a = c->a;
    struct node *n = o->id == a->self ? NULL : agent_node_find(a, o->id);
    if (!n || !n->probed || n->probe.samples || o->source != NETELECT_SRC_PROBE ||
        o->rtt_ns == NETELECT_RTT_UNKNOWN || o->rtt_ns > NETELECT_RTT_MAX_MEASURED)
        return 0;
    struct netelect_probe *p = &n->probe;
    p->srtt_ns = o->rtt_ns;
    p->rttvar_ns = o->rtt_err_ns;
    p->raw_ns = o->rtt_raw_ns <= NETELECT_RTT_MAX_MEASURED ? o->rtt_raw_ns : o->rtt_ns;
    p->samples = 1; /* what makes the estimate count as the probe's own */
    if (o->last_heard_ns && o->last_heard_ns <= c->now)
        p->last_heard_ns = o->last_heard_ns;
    if (c->fresh && o->healthy && p->last_heard_ns) {
        uint64_t quiet = (c->now - p->last_heard_ns) / a->probe_params.interval_ns;
        if (quiet < a->probe_params.misses) {
            p->healthy = 1;
            p->miss_run = (uint32_t)quiet;
            c->healthy++;
        }
    }
    c->nodes++;
    agent_node_changed(a, n);
    return 0;
}

/*
 * Reads the view the previous incarnation left under our segment name, with
 * the public reader (the file may be from an older build: the reader's
 * validation is the contract), and seeds the configured peers from it.
 * Best effort: no view, a foreign one or a read error just means starting
 * from nothing, as before.  The outcome goes to `msg` (one line, logged at
 * `*level` once the start-up line has said what this agent is).
 */
void agent_inherit_old_view(struct agent *a, char *msg, size_t msglen, int *level)
{
    *level = NETELECT_LOG_INFO;
    struct netelect_view_opts vo = {.size = sizeof vo, .fail_static_ns = UINT64_MAX,
                                    .expect_uid = (uint32_t)geteuid(), .expect_uid_set = 1};
    struct netelect_view *v;
    int r = netelect_view_open_opts(a->cfg.shm_name, &vo, &v);
    if (r < 0) {
        snprintf(msg, msglen, "inherited 0 nodes: no previous view of '%s' to start from (%s)",
                 a->cfg.shm_name, netelect_strerror(r));
        return;
    }
    struct inherit c = {.a = a, .now = agent_now_ns()};
    struct netelect_view_status st = {.size = sizeof st};
    r = netelect_view_status(v, &st);
    if (r == 0 && st.self_id != a->self) {
        snprintf(msg, msglen, "inherited 0 nodes: the previous view of '%s' is node %#llx's, not ours",
                 a->cfg.shm_name, (unsigned long long)st.self_id);
        netelect_view_close(v);
        return;
    }
    /* A heartbeat time from the future is another clock (a reboot, another
     * time namespace): not fresh. */
    bool aged = r == 0 && st.heartbeat_mono_ns && st.heartbeat_mono_ns <= c.now;
    uint64_t age = aged ? c.now - st.heartbeat_mono_ns : 0;
    uint64_t budget = (uint64_t)a->probe_params.misses * a->probe_params.interval_ns;
    c.fresh = aged && age <= budget;
    if (r == 0)
        r = netelect_view_foreach_node(v, inherit_node, &c);
    netelect_view_close(v);
    if (r < 0) {
        *level = NETELECT_LOG_WARN;
        snprintf(msg, msglen, "inherited 0 nodes: reading the previous view of '%s' failed: %s",
                 a->cfg.shm_name, netelect_strerror(r));
        return;
    }
    char ab[48];
    if (aged)
        snprintf(ab, sizeof ab, "%.1f ms old", age / 1e6);
    else
        snprintf(ab, sizeof ab, "of unknown age");
    *level = NETELECT_LOG_NOTICE;
    snprintf(msg, msglen,
             "inherited %zu nodes (%zu healthy) from the previous view of '%s': generation %llu, "
             "agent pid %d %s, heartbeat %s (health kept only within %.0f ms)",
             c.nodes, c.healthy, a->cfg.shm_name, (unsigned long long)st.generation,
             (int)st.agent_pid, st.state == NETELECT_AGENT_ABANDONED ? "exited cleanly" : "died", ab,
             budget / 1e6);
}


int agent_check_config(struct agent *a, const char *path)
{
    struct netelect_cfg cc;
    uint8_t key[NETELECT_KEY_LEN];
    char err[NETELECT_CFG_ERR_LEN];
    bool hk;
    a->cfg_path = path;
    if (load_config(a, &cc, key, &hk, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    gid_t g;
    if (resolve_group(cc.control_group, &g, err, sizeof err, "control_group") < 0 ||
        resolve_group(cc.shm_group, &g, err, sizeof err, "[segment] group") < 0) {
        fprintf(stderr, "%s: %s\n", path, err);
        agent_cfg_free(&cc);
        return 1;
    }
    printf("%s: valid: %zu peers, %zu channels, key %s\n", path, cc.n_peers, cc.n_chans,
           hk ? "loaded" : "not set");
    agent_cfg_free(&cc);
    return 0;
}

int agent_config_start(struct agent *a, gid_t *shm_gid, char *id_origin, size_t id_len)
{
    char err[NETELECT_CFG_ERR_LEN];
    if (load_config(a, &a->cfg, a->key, &a->have_key, err, sizeof err) < 0) {
        LOG_E("%s", err);
        return -1;
    }
    agent_log_set_level(a->cfg.log_level);
    a->self = a->cfg.node_id;
    snprintf(id_origin, id_len, "%s", a->opt_node_id ? "--node-id" : "config");
    if (!a->self) {
        /* agent/README.md, "Node id": the machine id, else an id generated
         * once and kept in the state directory. */
        char sdir[PATH_MAX];
        struct netelect_node_id_origin o;
        int r = agent_state_dir_default(a->cfg.state_dir, sdir, sizeof sdir, err, sizeof err);
        if (r >= 0)
            r = agent_node_id_resolve(NULL, sdir, &a->self, &o, err, sizeof err);
        if (r < 0) {
            LOG_E("no node_id configured and no readable /etc/machine-id or "
                  "/var/lib/dbus/machine-id to derive one from, and no generated id either: %s; "
                  "set [agent] node_id or pass --node-id", err);
            return -1;
        }
        if (o.source == NETELECT_NODE_ID_MACHINE_ID)
            snprintf(id_origin, id_len, "derived from %s: stable across reboots", o.path);
        else
            snprintf(id_origin, id_len, "%s %s because this host has no machine id: stable "
                     "across reboots while that file is kept",
                     o.source == NETELECT_NODE_ID_GENERATED ? "random, saved to" : "read from",
                     o.path);
    }
    if (resolve_group(a->cfg.control_group, &a->ctl_gid, err, sizeof err, "control_group") < 0 ||
        resolve_group(a->cfg.shm_group, shm_gid, err, sizeof err, "[segment] group") < 0) {
        LOG_E("%s: %s", a->cfg.source, err);
        return -1;
    }
    a->probe_params = probe_params(&a->cfg);
    return 0;
}
