/* SPDX-License-Identifier: MIT */
#include "agent/config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <ini.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

void agent_cfg_defaults(struct netelect_cfg *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->source, sizeof c->source, "<embedded default>");
    snprintf(c->listen, sizeof c->listen, "0.0.0.0:%d", NETELECT_DEFAULT_PORT);
    agent_parse_addr(c->listen, &c->listen_addr, &c->listen_len, 0);
    c->log_level = NETELECT_LOG_INFO;
    snprintf(c->control_path, sizeof c->control_path, "%s", NETELECT_DEFAULT_CONTROL);
    c->rate_pps = 1000;
    c->rate_burst = 2000;
    c->max_nodes = 65536;
    c->max_chans = 4096;
    c->max_members = 65536;
    c->control_per_uid = 16;
    c->control_request_timeout_ns = 5000000000ull;
    c->control_idle_timeout_ns = 60000000000ull;
    c->probe_interval_ns = 100000000;
    c->probe_timeout_ns = 100000000;
    c->probe_misses = 3;
    c->flap_threshold = 3;
    c->flap_rise = 10;
    c->flap_half_life_ns = 60000000000ull;
    snprintf(c->shm_name, sizeof c->shm_name, "netelect");
    c->shm_mode = 0644;
    c->heartbeat_ns = 100000000;
    c->publish_min_interval_ns = 1000000;
    c->rtt_change_pct = 10;
    snprintf(c->serf_rpc_addr, sizeof c->serf_rpc_addr, "127.0.0.1:7373");
    snprintf(c->serf_id_tag, sizeof c->serf_id_tag, "nid");
    snprintf(c->serf_channel_tag, sizeof c->serf_channel_tag, "netelect-channels");
    c->serf_coord_period_ns = 2000000000ull;
    c->serf_status_poll_ns = 50000000ull;
    c->serf_max_nodes = 10000;
    c->serf_max_chans = 1024;
}

void agent_cfg_free(struct netelect_cfg *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_chans; i++)
        free(c->chans[i].members);
    free(c->chans);
    free(c->peers);
    c->chans = NULL;
    c->peers = NULL;
    c->n_chans = c->n_peers = c->cap_chans = c->cap_peers = 0;
}

int agent_cfg_copy(struct netelect_cfg *dst, const struct netelect_cfg *src)
{
    *dst = *src;
    dst->peers = NULL;
    dst->chans = NULL;
    dst->n_peers = dst->cap_peers = dst->n_chans = dst->cap_chans = 0;
    if (src->n_peers) {
        dst->peers = malloc(src->n_peers * sizeof *dst->peers);
        if (!dst->peers)
            goto nomem;
        memcpy(dst->peers, src->peers, src->n_peers * sizeof *dst->peers);
        dst->n_peers = dst->cap_peers = src->n_peers;
    }
    if (src->n_chans) {
        dst->chans = calloc(src->n_chans, sizeof *dst->chans);
        if (!dst->chans)
            goto nomem;
        dst->cap_chans = src->n_chans;
        for (size_t i = 0; i < src->n_chans; i++) {
            dst->chans[i] = src->chans[i];
            dst->chans[i].members = NULL;
            dst->chans[i].cap = 0;
            dst->chans[i].n = 0;
            dst->n_chans = i + 1;
            if (src->chans[i].n) {
                dst->chans[i].members = malloc(src->chans[i].n * sizeof(uint64_t));
                if (!dst->chans[i].members)
                    goto nomem;
                memcpy(dst->chans[i].members, src->chans[i].members,
                       src->chans[i].n * sizeof(uint64_t));
                dst->chans[i].n = dst->chans[i].cap = src->chans[i].n;
            }
        }
    }
    return 0;
nomem:
    agent_cfg_free(dst);
    return -ENOMEM;
}

/* ------------------------------------------------------------------------ */

struct parse_ctx {
    struct netelect_cfg *c;
    const char *name;
    const char *buf;
    size_t len, pos;
    int line;          /* line the reader last returned, i.e. the handler's line */
    int err_line;      /* first error found by us (0: none) */
    char *err;
    size_t errlen;
    int err_code;
    bool too_long;
};

__attribute__((format(printf, 3, 4))) static int fail_at(struct parse_ctx *p, int line,
                                                         const char *fmt, ...)
{
    if (p->err_line)
        return 0; /* keep the first error: inih reports the first line too */
    char msg[NETELECT_CFG_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->err_line = line ? line : -1;
    if (line > 0)
        snprintf(p->err, p->errlen, "%s:%d: %s", p->name, line, msg);
    else
        snprintf(p->err, p->errlen, "%s: %s", p->name, msg);
    return 0;
}
#define FAIL(...) fail_at(p, p->line, __VA_ARGS__)

/* fgets over the buffer, one line per call, so the line number the handler
 * sees is exact (Debian's inih is built without INI_HANDLER_LINENO). */
static char *reader(char *str, int num, void *stream)
{
    struct parse_ctx *p = stream;
    if (p->pos >= p->len || p->too_long)
        return NULL;
    p->line++;
    size_t start = p->pos, end = start;
    while (end < p->len && p->buf[end] != '\n')
        end++;
    size_t n = end - start;
    if (n && p->buf[start + n - 1] == '\r')
        n--;
    if (n > (size_t)num - 3 || n > NETELECT_CFG_MAX_LINE) {
        p->too_long = true;
        fail_at(p, p->line, "line longer than %d characters (split a channel's members "
                            "over several lines with the same name)", NETELECT_CFG_MAX_LINE);
        return NULL;
    }
    if (memchr(p->buf + start, 0, n)) {
        p->too_long = true;
        fail_at(p, p->line, "NUL byte in line");
        return NULL;
    }
    memcpy(str, p->buf + start, n);
    str[n] = '\n';
    str[n + 1] = 0;
    p->pos = end < p->len ? end + 1 : end;
    return str;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1") ||
        !strcasecmp(v, "on"))
        *out = 1;
    else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0") ||
             !strcasecmp(v, "off"))
        *out = 0;
    else
        return -EINVAL;
    return 0;
}

static int set_str(struct parse_ctx *p, char *dst, size_t cap, const char *v, const char *what)
{
    size_t n = strlen(v);
    if (n >= cap)
        return FAIL("%s is too long (max %zu characters)", what, cap - 1);
    memcpy(dst, v, n + 1);
    return 1;
}

static int set_dur(struct parse_ctx *p, uint64_t *dst, const char *v, const char *what,
                   uint64_t lo, uint64_t hi)
{
    uint64_t ns;
    if (agent_parse_duration(v, &ns) < 0)
        return FAIL("%s: '%s' is not a duration (a number with a unit: ns, us, ms or s)", what, v);
    if (ns < lo || ns > hi)
        return FAIL("%s: %s is out of range [%.3f ms, %.3f ms]", what, v, lo / 1e6, hi / 1e6);
    *dst = ns;
    return 1;
}

static int set_u32(struct parse_ctx *p, uint32_t *dst, const char *v, const char *what,
                   uint32_t lo, uint32_t hi)
{
    uint64_t x;
    if (agent_parse_u64(v, &x) < 0 || x < lo || x > hi)
        return FAIL("%s: '%s' is not an integer in [%u, %u]", what, v, lo, hi);
    *dst = (uint32_t)x;
    return 1;
}

static struct netelect_cfg_chan *chan_get(struct parse_ctx *p, const char *name)
{
    struct netelect_cfg *c = p->c;
    for (size_t i = 0; i < c->n_chans; i++)
        if (!strcmp(c->chans[i].name, name))
            return &c->chans[i];
    if (c->n_chans == c->cap_chans) {
        size_t cap = c->cap_chans ? 2 * c->cap_chans : 8;
        void *np = realloc(c->chans, cap * sizeof *c->chans);
        if (!np)
            return NULL;
        c->chans = np;
        c->cap_chans = cap;
    }
    struct netelect_cfg_chan *ch = &c->chans[c->n_chans++];
    memset(ch, 0, sizeof *ch);
    snprintf(ch->name, sizeof ch->name, "%s", name);
    ch->line = p->line;
    return ch;
}

static int add_members(struct parse_ctx *p, struct netelect_cfg_chan *ch, const char *v)
{
    char tmp[NETELECT_CFG_MAX_LINE + 3];
    snprintf(tmp, sizeof tmp, "%s", v);
    char *save = NULL;
    int any = 0;
    for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = agent_trim(tok);
        if (!*tok)
            return FAIL("channel '%s': empty member in list", ch->name);
        uint64_t id = 0; /* 0 stands for "self", resolved by the agent */
        if (strcmp(tok, "self") && agent_parse_id(tok, &id) < 0)
            return FAIL("channel '%s': member '%s' is not a node id (1..2^64-1, decimal or 0x) "
                        "or 'self'", ch->name, tok);
        for (size_t i = 0; i < ch->n; i++)
            if (ch->members[i] == id)
                return FAIL("channel '%s': member '%s' listed twice", ch->name, tok);
        if (ch->n == ch->cap) {
            size_t cap = ch->cap ? 2 * ch->cap : 8;
            void *np = realloc(ch->members, cap * sizeof *ch->members);
            if (!np) {
                p->err_code = -ENOMEM;
                return FAIL("out of memory");
            }
            ch->members = np;
            ch->cap = cap;
        }
        ch->members[ch->n++] = id;
        any = 1;
    }
    if (!any)
        return FAIL("channel '%s': no members", ch->name);
    return 1;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct parse_ctx *p = user;
    struct netelect_cfg *c = p->c;
    const char *s = section, *k = name, *v = value ? value : "";
#define IS(sec, key) (!strcmp(s, sec) && !strcmp(k, key))
    if (IS("agent", "node_id")) {
        if (agent_parse_id(v, &c->node_id) < 0)
            return FAIL("node_id: '%s' is not a node id (1..2^64-1, decimal or 0x-hex)", v);
        c->node_id_line = p->line;
        return 1;
    }
    if (IS("agent", "listen")) {
        if (agent_parse_addr(v, &c->listen_addr, &c->listen_len, 1) < 0)
            return FAIL("listen: '%s' is not a numeric address:port (IPv6 as [addr]:port)", v);
        return set_str(p, c->listen, sizeof c->listen, v, "listen");
    }
    if (IS("agent", "key_file")) {
        c->key_file_line = p->line;
        if (*v != '/')
            return FAIL("key_file: '%s' must be an absolute path", v);
        return set_str(p, c->key_file, sizeof c->key_file, v, "key_file");
    }
    if (IS("agent", "log_level")) {
        static const struct { const char *n; int l; } lv[] = {
            {"err", NETELECT_LOG_ERR},       {"error", NETELECT_LOG_ERR},
            {"warning", NETELECT_LOG_WARN},  {"warn", NETELECT_LOG_WARN},
            {"notice", NETELECT_LOG_NOTICE}, {"info", NETELECT_LOG_INFO},
            {"debug", NETELECT_LOG_DEBUG}};
        for (size_t i = 0; i < sizeof lv / sizeof lv[0]; i++)
            if (!strcasecmp(v, lv[i].n)) {
                c->log_level = lv[i].l;
                return 1;
            }
        return FAIL("log_level: '%s' is not one of err, warning, notice, info, debug", v);
    }
    if (IS("agent", "control")) {
        if (*v != '/')
            return FAIL("control: '%s' must be an absolute path", v);
        return set_str(p, c->control_path, sizeof c->control_path, v, "control");
    }
    if (IS("agent", "control_group"))
        return set_str(p, c->control_group, sizeof c->control_group, v, "control_group");
    if (IS("agent", "state_dir")) {
        if (*v != '/')
            return FAIL("state_dir: '%s' must be an absolute path", v);
        return set_str(p, c->state_dir, sizeof c->state_dir, v, "state_dir");
    }
    if (IS("agent", "control_clients_per_uid"))
        return set_u32(p, &c->control_per_uid, v, "control_clients_per_uid", 1, 127);
    if (IS("agent", "control_request_timeout"))
        return set_dur(p, &c->control_request_timeout_ns, v, "control_request_timeout", 10000000,
                       600000000000ull);
    if (IS("agent", "control_idle_timeout"))
        return set_dur(p, &c->control_idle_timeout_ns, v, "control_idle_timeout", 10000000,
                       86400000000000ull);
    if (IS("agent", "rtt_hysteresis")) {
        /* "20%" or "20": a whole percentage of the published RTT */
        char tmp[32];
        size_t n = strlen(v);
        if (n && v[n - 1] == '%')
            n--;
        bool digits = n && n < sizeof tmp;
        for (size_t i = 0; digits && i < n; i++)
            digits = v[i] >= '0' && v[i] <= '9';
        if (!digits)
            return FAIL("rtt_hysteresis: '%s' is not a percentage in [0%%, 100%%] (e.g. 20%%)", v);
        memcpy(tmp, v, n);
        tmp[n] = 0;
        unsigned long x = strtoul(tmp, NULL, 10);
        if (x > 100)
            return FAIL("rtt_hysteresis: '%s' is not a percentage in [0%%, 100%%] (e.g. 20%%)", v);
        c->rtt_hyst_pct = (uint32_t)x;
        return 1;
    }
    if (IS("agent", "rtt_hysteresis_min"))
        return set_dur(p, &c->rtt_hyst_min_ns, v, "rtt_hysteresis_min", 0, 100000000);
    if (IS("agent", "rate_limit"))
        return set_u32(p, &c->rate_pps, v, "rate_limit", 1, 10000000);
    if (IS("agent", "rate_burst"))
        return set_u32(p, &c->rate_burst, v, "rate_burst", 1, 10000000);

    if (IS("limits", "nodes"))
        return set_u32(p, &c->max_nodes, v, "[limits] nodes", 1, 1000000);
    if (IS("limits", "channels"))
        return set_u32(p, &c->max_chans, v, "[limits] channels", 1, 1000000);
    if (IS("limits", "members"))
        return set_u32(p, &c->max_members, v, "[limits] members", 1, 1000000);

    if (IS("probe", "interval"))
        return set_dur(p, &c->probe_interval_ns, v, "interval", 1000000, 60000000000ull);
    if (IS("probe", "timeout"))
        return set_dur(p, &c->probe_timeout_ns, v, "timeout", 100000, 60000000000ull);
    if (IS("probe", "misses"))
        return set_u32(p, &c->probe_misses, v, "misses", 1, 1000);
    if (IS("probe", "flap_threshold"))
        return set_u32(p, &c->flap_threshold, v, "flap_threshold", 1, 1000);
    if (IS("probe", "flap_rise"))
        return set_u32(p, &c->flap_rise, v, "flap_rise", 1, 100000);
    if (IS("probe", "flap_half_life"))
        return set_dur(p, &c->flap_half_life_ns, v, "flap_half_life", 1000000,
                       86400000000000ull);

    if (IS("segment", "name")) {
        if (!*v || strstr(v, ".."))
            return FAIL("segment name '%s' is empty or contains '..'", v);
        return set_str(p, c->shm_name, sizeof c->shm_name, v, "segment name");
    }
    if (IS("segment", "mode")) {
        uint64_t m;
        if (agent_parse_u64(v, &m) < 0 || *v != '0' || m > 0777)
            return FAIL("mode: '%s' is not an octal mode like 0644", v);
        if (m & 022)
            return FAIL("mode: %s is group- or world-writable; readers refuse such a segment", v);
        c->shm_mode = (uint32_t)m;
        return 1;
    }
    if (IS("segment", "group"))
        return set_str(p, c->shm_group, sizeof c->shm_group, v, "segment group");
    if (IS("segment", "heartbeat"))
        return set_dur(p, &c->heartbeat_ns, v, "heartbeat", 1000000, 10000000000ull);
    if (IS("segment", "publish_min_interval"))
        return set_dur(p, &c->publish_min_interval_ns, v, "publish_min_interval", 0,
                       1000000000ull);
    if (IS("segment", "rtt_change_pct"))
        return set_u32(p, &c->rtt_change_pct, v, "rtt_change_pct", 0, 1000);

    if (!strcmp(s, "peers")) {
        uint64_t id;
        if (agent_parse_id(k, &id) < 0)
            return FAIL("peer '%s': not a node id (1..2^64-1, decimal or 0x-hex)", k);
        for (size_t i = 0; i < c->n_peers; i++)
            if (c->peers[i].id == id)
                return FAIL("peer %s is configured twice (first on line %d)", k,
                            c->peers[i].line);
        if (c->n_peers == c->cap_peers) {
            size_t cap = c->cap_peers ? 2 * c->cap_peers : 16;
            void *np = realloc(c->peers, cap * sizeof *c->peers);
            if (!np) {
                p->err_code = -ENOMEM;
                return FAIL("out of memory");
            }
            c->peers = np;
            c->cap_peers = cap;
        }
        struct netelect_cfg_peer *pe = &c->peers[c->n_peers];
        memset(pe, 0, sizeof *pe);
        if (agent_parse_addr(v, &pe->addr, &pe->addrlen, 0) < 0)
            return FAIL("peer %s: '%s' is not a numeric address:port (IPv6 as [addr]:port)", k, v);
        pe->id = id;
        pe->line = p->line;
        if (!c->peers_line)
            c->peers_line = p->line;
        c->n_peers++;
        return 1;
    }
    if (!strcmp(s, "channels")) {
        if (!agent_valid_chan_name(k))
            return FAIL("channel name '%s' is invalid (1..%d characters of A-Z a-z 0-9 . _ : / @ -)",
                        k, NETELECT_CHAN_NAME_MAX);
        struct netelect_cfg_chan *ch = chan_get(p, k);
        if (!ch) {
            p->err_code = -ENOMEM;
            return FAIL("out of memory");
        }
        return add_members(p, ch, v);
    }

    if (IS("serf", "enabled")) {
        if (parse_bool(v, &c->serf_enabled) < 0)
            return FAIL("serf enabled: '%s' is not yes/no", v);
        return 1;
    }
    if (IS("serf", "rpc_addr")) {
        struct sockaddr_storage ss;
        socklen_t l;
        if (agent_parse_addr(v, &ss, &l, 0) < 0)
            return FAIL("serf rpc_addr: '%s' is not a numeric address:port", v);
        return set_str(p, c->serf_rpc_addr, sizeof c->serf_rpc_addr, v, "serf rpc_addr");
    }
    if (IS("serf", "auth_key"))
        return set_str(p, c->serf_auth_key, sizeof c->serf_auth_key, v, "serf auth_key");
    if (IS("serf", "id_tag"))
        return set_str(p, c->serf_id_tag, sizeof c->serf_id_tag, v, "serf id_tag");
    if (IS("serf", "channel_tag"))
        return set_str(p, c->serf_channel_tag, sizeof c->serf_channel_tag, v,
                       "serf channel_tag");
    if (IS("serf", "rpc_uid")) {
        /* Resolved when the Serf client starts (a user name needs NSS). */
        bool ok = *v != '\0' && strlen(v) < sizeof c->serf_rpc_uid;
        for (const char *q = v; ok && *q; q++)
            ok = (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
                 *q == '_' || *q == '-' || *q == '.';
        if (!ok)
            return FAIL("serf rpc_uid: '%s' is not a uid, a user name or 'any'", v);
        return set_str(p, c->serf_rpc_uid, sizeof c->serf_rpc_uid, v, "serf rpc_uid");
    }
    if (IS("serf", "max_nodes"))
        return set_u32(p, &c->serf_max_nodes, v, "serf max_nodes", 1, 1000000);
    if (IS("serf", "max_channels"))
        return set_u32(p, &c->serf_max_chans, v, "serf max_channels", 1, 1000000);
    if (IS("serf", "coord_period"))
        return set_dur(p, &c->serf_coord_period_ns, v, "serf coord_period", 100000000,
                       3600000000000ull);
    if (IS("serf", "status_poll")) {
        /* "off" leaves health to the stream alone, ~1 s behind Serf's own
         * detection (docs/serf.md); below 10 ms the poll would cost the
         * local agent more than the detection it speeds up is worth. */
        if (!strcasecmp(v, "off")) {
            c->serf_status_poll_ns = UINT64_MAX;
            return 1;
        }
        return set_dur(p, &c->serf_status_poll_ns, v, "serf status_poll (or off)", 10000000,
                       60000000000ull);
    }
    if (IS("metrics", "listen")) {
        /* Off unless set: an empty value turns it off again. */
        if (!*v) {
            c->metrics_listen[0] = 0;
            return 1;
        }
        if (agent_parse_addr(v, &c->metrics_addr, &c->metrics_len, 0) < 0)
            return FAIL("metrics listen: '%s' is not a numeric address:port (IPv6 as [addr]:port)",
                        v);
        return set_str(p, c->metrics_listen, sizeof c->metrics_listen, v, "metrics listen");
    }
#undef IS
    if (strcmp(s, "agent") && strcmp(s, "probe") && strcmp(s, "segment") && strcmp(s, "serf") &&
        strcmp(s, "limits") && strcmp(s, "metrics"))
        return FAIL("unknown section [%s] (known: agent, probe, segment, peers, channels, serf, "
                    "limits, metrics)", s);
    return FAIL("unknown key '%s' in [%s]", k, s);
}

static int validate(struct parse_ctx *p)
{
    struct netelect_cfg *c = p->c;
    if (c->probe_timeout_ns > c->probe_interval_ns)
        return fail_at(p, 0, "[probe] timeout (%.3f ms) must not exceed interval (%.3f ms)",
                       c->probe_timeout_ns / 1e6, c->probe_interval_ns / 1e6);
    if (c->n_peers && !c->key_file[0])
        return fail_at(p, c->peers_line,
                       "peers are configured but [agent] key_file is not set: every probe is "
                       "authenticated (create a key with: netelectd --gen-key FILE)");
    for (size_t i = 0; i < c->n_peers; i++)
        if (c->peers[i].addr.ss_family == AF_INET6 && c->listen_addr.ss_family == AF_INET)
            return fail_at(p, c->peers[i].line, "peer %#llx has an IPv6 address but [agent] listen "
                           "is IPv4 (listen on [::]:port to reach both)",
                           (unsigned long long)c->peers[i].id);
    for (size_t i = 0; i < c->n_peers; i++)
        if (c->node_id && c->peers[i].id == c->node_id)
            return fail_at(p, c->peers[i].line, "peer %#llx is this node's own node_id",
                           (unsigned long long)c->node_id);
    for (size_t i = 0; i < c->n_chans; i++)
        for (size_t j = 0; j < c->chans[i].n; j++)
            if (c->node_id && c->chans[i].members[j] == c->node_id)
                for (size_t k = 0; k < c->chans[i].n; k++)
                    if (!c->chans[i].members[k])
                        return fail_at(p, c->chans[i].line,
                                       "channel '%s' lists this node both as 'self' and by id",
                                       c->chans[i].name);
    return 1;
}

int agent_cfg_load_buffer(const char *buf, size_t len, const char *name,
                              struct netelect_cfg *out, char *err, size_t errlen)
{
    struct parse_ctx p = {.c = out, .name = name ? name : "<buffer>", .buf = buf, .len = len,
                          .err = err, .errlen = errlen};
    if (errlen)
        err[0] = 0;
    agent_cfg_defaults(out);
    snprintf(out->source, sizeof out->source, "%s", p.name);
    int r = ini_parse_stream(reader, &p, handler, &p);
    if (r == -2) {
        agent_cfg_free(out);
        snprintf(err, errlen, "%s: out of memory", p.name);
        return -ENOMEM;
    }
    if (r > 0 && (!p.err_line || r < p.err_line)) {
        p.err_line = 0;
        fail_at(&p, r, "syntax error (expected [section], name = value, or a ; or # comment)");
    }
    if (!p.err_line)
        validate(&p);
    if (p.err_line) {
        agent_cfg_free(out);
        return p.err_code ? p.err_code : -EINVAL;
    }
    return 0;
}

int agent_cfg_load_file(const char *path, struct netelect_cfg *out, char *err, size_t errlen)
{
    agent_cfg_defaults(out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (16 << 20)) {
        close(fd);
        snprintf(err, errlen, "%s: not a regular file of at most 16 MiB", path);
        return -EINVAL;
    }
    /* Whoever can write the configuration chooses the peers, the key file
     * and who may control the agent: only its owner may, and the owner is
     * root or the agent's own user (checked on the open file). */
    int r = agent_file_owner_ok(&st, path, "configuration", err, errlen);
    if (r == 0 && (st.st_mode & 022)) {
        snprintf(err, errlen, "%s: mode %04o lets group or others change the configuration; "
                              "chmod go-w it", path, (unsigned)(st.st_mode & 07777));
        r = -EPERM;
    }
    if (r < 0) {
        close(fd);
        return r;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    r = agent_cfg_load_buffer(buf, got, path, out, err, errlen);
    sodium_memzero(buf, got);
    free(buf);
    /* A configuration holding a secret is a key file: nobody else reads it. */
    if (r == 0 && out->serf_auth_key[0] && (st.st_mode & 077)) {
        snprintf(err, errlen, "%s: holds [serf] auth_key but mode %04o lets others read it; "
                              "chmod 600 it", path, (unsigned)(st.st_mode & 07777));
        agent_cfg_free(out);
        sodium_memzero(out->serf_auth_key, sizeof out->serf_auth_key);
        return -EPERM;
    }
    return r;
}

/* ------------------------------------------------------------------------ */

int agent_file_owner_ok(const struct stat *st, const char *path, const char *what, char *err,
                            size_t errlen)
{
    uid_t me = geteuid();
    if (st->st_uid == me || st->st_uid == 0)
        return 0;
    snprintf(err, errlen, "%s %s: owned by uid %u, not by root or this agent's user (uid %u): "
                          "that user could change it; chown it", what, path,
             (unsigned)st->st_uid, (unsigned)me);
    return -EPERM;
}

int agent_key_load(const char *path, uint8_t key[NETELECT_KEY_LEN], char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "key file %s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    char buf[256];
    ssize_t n = -1;
    int r = 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "key file %s: not a regular file", path);
        r = -EINVAL;
    } else if (st.st_mode & 077) {
        snprintf(err, errlen, "key file %s: mode %04o lets others read it; chmod 600 it", path,
                 (unsigned)(st.st_mode & 07777));
        r = -EPERM;
    } else if ((r = agent_file_owner_ok(&st, path, "key file", err, errlen)) < 0) {
        /* message set */
    } else if ((n = read(fd, buf, sizeof buf - 1)) < 0) {
        r = -errno;
        snprintf(err, errlen, "key file %s: %s", path, strerror(-r));
    }
    close(fd);
    if (r < 0)
        return r;
    buf[n] = 0;
    char *hex = agent_trim(buf);
    size_t bin_len = 0;
    const char *end = NULL;
    if (strlen(hex) != 2 * NETELECT_KEY_LEN ||
        sodium_hex2bin(key, NETELECT_KEY_LEN, hex, strlen(hex), NULL, &bin_len, &end) != 0 ||
        bin_len != NETELECT_KEY_LEN || *end) {
        sodium_memzero(buf, sizeof buf);
        snprintf(err, errlen, "key file %s: expected exactly %d hex digits (make one with "
                              "netelectd --gen-key FILE)", path, 2 * NETELECT_KEY_LEN);
        return -EINVAL;
    }
    sodium_memzero(buf, sizeof buf);
    return 0;
}

int agent_key_generate(const char *path, char *err, size_t errlen)
{
    uint8_t key[NETELECT_KEY_LEN];
    char hex[2 * NETELECT_KEY_LEN + 2];
    if (getrandom(key, sizeof key, 0) != (ssize_t)sizeof key) {
        snprintf(err, errlen, "getrandom: %s", strerror(errno));
        return -EIO;
    }
    sodium_bin2hex(hex, sizeof hex, key, sizeof key);
    sodium_memzero(key, sizeof key);
    size_t l = strlen(hex);
    hex[l++] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s%s", path, strerror(e),
                 e == EEXIST ? " (refusing to overwrite a key)" : "");
        return -e;
    }
    int r = 0;
    if (write(fd, hex, l) != (ssize_t)l || fsync(fd) < 0) {
        r = -errno;
        snprintf(err, errlen, "%s: write: %s", path, strerror(errno));
    }
    sodium_memzero(hex, sizeof hex);
    close(fd);
    return r;
}

int agent_default_node_id(const char *machine_id_path, uint64_t *out)
{
    static const char app_key[] = "netelect node id v1";
    const char *paths[] = {machine_id_path ? machine_id_path : "/etc/machine-id",
                           machine_id_path ? NULL : "/var/lib/dbus/machine-id"};
    for (size_t i = 0; i < 2 && paths[i]; i++) {
        FILE *f = fopen(paths[i], "re");
        if (!f)
            continue;
        char buf[128];
        char *l = fgets(buf, sizeof buf, f);
        fclose(f);
        if (!l)
            continue;
        char *id = agent_trim(buf);
        if (strlen(id) != 32)
            continue; /* an uninitialised ("uninitialized") or empty machine id */
        uint8_t h[8];
        if (crypto_generichash(h, sizeof h, (const uint8_t *)id, strlen(id),
                               (const uint8_t *)app_key, sizeof app_key - 1) != 0)
            return -EIO;
        uint64_t v = 0;
        for (int b = 7; b >= 0; b--)
            v = v << 8 | h[b];
        *out = v ? v : 1;
        return 0;
    }
    return -ENOENT;
}

int agent_state_dir_default(const char *configured, char *out, size_t cap, char *err,
                                size_t errlen)
{
    const char *base = NULL, *tail = "";
    if (configured && *configured) {
        base = configured;
    } else if (geteuid() == 0) {
        base = NETELECT_DEFAULT_STATE_DIR;
    } else {
        /* XDG Base Directory: $XDG_STATE_HOME, else ~/.local/state; a
         * relative value is invalid there and is ignored. */
        const char *x = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
        if (x && *x == '/') {
            base = x;
            tail = "/netelect";
        } else if (home && *home == '/') {
            base = home;
            tail = "/.local/state/netelect";
        } else {
            snprintf(err, errlen, "not running as root and neither $XDG_STATE_HOME nor $HOME is "
                                  "an absolute path, so there is no state directory: set "
                                  "[agent] state_dir");
            return -ENOENT;
        }
    }
    if ((size_t)snprintf(out, cap, "%s%s", base, tail) >= cap) {
        snprintf(err, errlen, "state directory %s%s: path too long", base, tail);
        return -ENAMETOOLONG;
    }
    return 0;
}

/* mkdir -p with mode 0700 for every directory it creates. */
static int mkdirs(const char *dir, char *err, size_t errlen)
{
    char p[PATH_MAX];
    size_t n = strlen(dir);
    if (n >= sizeof p)
        return -ENAMETOOLONG;
    memcpy(p, dir, n + 1);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s)
            continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            int e = errno;
            snprintf(err, errlen, "state directory %s: mkdir %s: %s", dir, p, strerror(e));
            return -e;
        }
        *s = c;
        if (!c)
            break;
    }
    return 0;
}

/* 1 and *out if path holds a node id, 0 if it does not exist, else -errno. */
static int node_id_file_read(const char *path, uint64_t *out, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return 0;
        snprintf(err, errlen, "node id file %s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    char buf[64];
    ssize_t n = -1;
    int r = 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "node id file %s: not a regular file", path);
        r = -EINVAL;
    } else if (st.st_mode & 022) {
        /* whoever may write it may choose this node's identity */
        snprintf(err, errlen, "node id file %s: mode %04o lets others write it; chmod 600 it",
                 path, (unsigned)(st.st_mode & 07777));
        r = -EPERM;
    } else if ((n = read(fd, buf, sizeof buf - 1)) < 0) {
        r = -errno;
        snprintf(err, errlen, "node id file %s: %s", path, strerror(-r));
    }
    close(fd);
    if (r < 0)
        return r;
    buf[n] = 0;
    if (agent_parse_id(agent_trim(buf), out) < 0) {
        snprintf(err, errlen, "node id file %s: not a node id (0x-hex, not 0); remove it to "
                              "generate a new one, or set [agent] node_id", path);
        return -EINVAL;
    }
    return 1;
}

/* Writes a new random id to a temporary file (O_EXCL, 0600), then link()s it
 * to its name: unlike rename(), link() never replaces an id that another
 * agent published meanwhile, so two racing starts end up with the same id.
 * 1 if published, 0 if path already existed (nothing written), -errno. */
static int node_id_file_create(const char *dir, const char *path, uint64_t *out, char *err,
                               size_t errlen)
{
    uint64_t id = 0;
    while (!id)
        if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id) {
            int e = errno;
            snprintf(err, errlen, "getrandom: %s", strerror(e));
            return -e;
        }
    char tmp[PATH_MAX], text[32];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/.node-id.XXXXXX", dir) >= sizeof tmp) {
        snprintf(err, errlen, "node id file %s: path too long", path);
        return -ENAMETOOLONG;
    }
    int fd = mkostemp(tmp, O_CLOEXEC); /* O_CREAT | O_EXCL, mode 0600 */
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "node id file %s: cannot create a file in %s: %s", path, dir,
                 strerror(e));
        return -e;
    }
    int len = snprintf(text, sizeof text, "0x%016llx\n", (unsigned long long)id);
    int r = 0;
    errno = 0;
    if (fchmod(fd, 0600) < 0 || write(fd, text, (size_t)len) != len || fsync(fd) < 0) {
        r = -(errno ? errno : EIO);
        snprintf(err, errlen, "node id file %s: write: %s", tmp, strerror(-r));
    }
    close(fd);
    if (!r && link(tmp, path) < 0) {
        r = -errno;
        if (r != -EEXIST)
            snprintf(err, errlen, "node id file %s: link: %s", path, strerror(-r));
    }
    unlink(tmp);
    if (r == -EEXIST)
        return 0;
    if (r < 0)
        return r;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* the new name survives a crash */
        close(dfd);
    }
    *out = id;
    return 1;
}

int agent_node_id_resolve(const char *machine_id_path, const char *state_dir, uint64_t *out,
                              struct netelect_node_id_origin *origin, char *err, size_t errlen)
{
    memset(origin, 0, sizeof *origin);
    if (agent_default_node_id(machine_id_path, out) == 0) {
        origin->source = NETELECT_NODE_ID_MACHINE_ID;
        snprintf(origin->path, sizeof origin->path, "%s",
                 machine_id_path ? machine_id_path : "/etc/machine-id");
        return 0;
    }
    const char *mids = machine_id_path ? machine_id_path
                                       : "/etc/machine-id nor /var/lib/dbus/machine-id";
    if (!state_dir) {
        snprintf(err, errlen, "no node_id configured, no readable %s, and no state directory "
                              "for a generated one", mids);
        return -ENOENT;
    }
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", state_dir, NETELECT_NODE_ID_FILE) >=
        sizeof path) {
        snprintf(err, errlen, "state directory %s: path too long", state_dir);
        return -ENAMETOOLONG;
    }
    snprintf(origin->path, sizeof origin->path, "%s", path);
    /* Read before creating; if another agent wins the race to create it,
     * read what it wrote. */
    for (int attempt = 0; attempt < 2; attempt++) {
        int r = node_id_file_read(path, out, err, errlen);
        if (r < 0)
            return r;
        if (r > 0) {
            origin->source = NETELECT_NODE_ID_STATE_FILE;
            return 0;
        }
        if (attempt)
            break;
        if ((r = mkdirs(state_dir, err, errlen)) < 0)
            return r;
        if ((r = node_id_file_create(state_dir, path, out, err, errlen)) < 0)
            return r;
        if (r > 0) {
            origin->source = NETELECT_NODE_ID_GENERATED;
            return 0;
        }
    }
    snprintf(err, errlen, "node id file %s: vanished while being created", path);
    return -EAGAIN;
}

const char *agent_log_level_name(int level)
{
    switch (level) {
    case NETELECT_LOG_ERR: return "err";
    case NETELECT_LOG_WARN: return "warning";
    case NETELECT_LOG_NOTICE: return "notice";
    case NETELECT_LOG_INFO: return "info";
    default: return "debug";
    }
}
