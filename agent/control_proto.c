/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/control_proto.h"

static const struct {
    const char *name;
    unsigned flags; /* NETELECT_CTL_MUTATES, NETELECT_CTL_PEER */
    const char *keys;
} verbs[] = {
#define VERB(verb, handler, name, flags, keys) [NETELECT_CTL_##verb] = {name, flags, keys},
    NETELECT_CTL_VERBS(VERB)
#undef VERB
};

const char *agent_ctl_verb_name(enum netelect_ctl_verb v)
{
    return (unsigned)v < NETELECT_CTL_NVERBS ? verbs[v].name : "?";
}

int agent_ctl_mutates(enum netelect_ctl_verb v)
{
    return (unsigned)v >= NETELECT_CTL_NVERBS || (verbs[v].flags & NETELECT_CTL_MUTATES);
}

/* Whether key is one of the space-separated words of keys. */
static int takes_key(const char *keys, const char *key)
{
    const size_t l = strlen(key);
    for (const char *p = keys; *p;) {
        const size_t w = strcspn(p, " ");
        if (w == l && !memcmp(p, key, l))
            return 1;
        p += w;
        p += *p == ' ';
    }
    return 0;
}

void agent_ctl_req_free(struct netelect_ctl_req *r)
{
    free(r->members);
    r->members = NULL;
    r->n_members = 0;
}

static int get_id(json_t *v, uint64_t *out, int allow_self)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i <= 0)
            return -EINVAL;
        *out = (uint64_t)i;
        return 0;
    }
    if (!json_is_string(v))
        return -EINVAL;
    if (allow_self && !strcmp(json_string_value(v), "self")) {
        *out = 0;
        return 0;
    }
    return agent_parse_id(json_string_value(v), out);
}

struct id_at {
    uint64_t id;
    size_t at;
};

static int cmp_id_at(const void *x, const void *y)
{
    const struct id_at *p = x, *q = y;
    if (p->id != q->id)
        return p->id < q->id ? -1 : 1;
    return p->at < q->at ? -1 : p->at > q->at;
}

/* The index of the first element that repeats an earlier one, n if none,
 * SIZE_MAX if out of memory: O(n log n), not a scan per element. */
static size_t first_duplicate(const uint64_t *ids, size_t n)
{
    struct id_at *s = malloc((n ? n : 1) * sizeof *s);
    if (!s)
        return SIZE_MAX;
    for (size_t i = 0; i < n; i++)
        s[i] = (struct id_at){ids[i], i};
    qsort(s, n, sizeof *s, cmp_id_at);
    size_t first = n;
    for (size_t i = 1; i < n; i++)
        if (s[i].id == s[i - 1].id && s[i].at < first)
            first = s[i].at;
    free(s);
    return first;
}

#define ERR(code, ...) do { snprintf(err, errlen, __VA_ARGS__); r = (code); goto out; } while (0)

int agent_ctl_parse(const char *line, size_t len, struct netelect_ctl_req *out, char *err,
                        size_t errlen)
{
    int r = 0;
    json_error_t je;
    memset(out, 0, sizeof *out);
    if (len > NETELECT_CTL_MAX_LINE) {
        snprintf(err, errlen, "request longer than %d bytes", NETELECT_CTL_MAX_LINE);
        return -E2BIG;
    }
    /* JSON_REJECT_DUPLICATES: {"id":1,"id":2} must not mean whichever came last. */
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "malformed JSON at column %d: %s", je.column, je.text);
        return -EINVAL;
    }
    if (!json_is_object(root))
        ERR(-EINVAL, "request must be a JSON object");
    json_t *cmd = json_object_get(root, "cmd");
    if (!json_is_string(cmd))
        ERR(-EINVAL, "missing \"cmd\" string");
    const char *c = json_string_value(cmd);
    size_t i;
    for (i = 0; i < NETELECT_CTL_NVERBS; i++)
        if (!strcmp(c, verbs[i].name))
            break;
    if (i == NETELECT_CTL_NVERBS) {
        char names[256];
        size_t o = 0;
        for (size_t k = 0; k < NETELECT_CTL_NVERBS && o < sizeof names; k++)
            o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", k ? ", " : "",
                                  verbs[k].name);
        ERR(-EINVAL, "unknown cmd \"%.64s\" (%s)", c, names);
    }
    out->verb = (enum netelect_ctl_verb)i;

    /* Every key must be one this verb uses: a typo is an error, not a no-op. */
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "cmd") && !takes_key(verbs[i].keys, key))
            ERR(-EINVAL, "unexpected key \"%.64s\" for %s", key, c);
    }

    if ((verbs[i].flags & NETELECT_CTL_PEER) && get_id(json_object_get(root, "id"), &out->id, 0) < 0)
        ERR(-EINVAL, "\"id\" must be a node id: a string (decimal or 0x-hex) or a positive "
                     "integer, not 0");
    switch (out->verb) {
    case NETELECT_CTL_STATS: {
        json_t *af = json_object_get(root, "after"), *li = json_object_get(root, "limit");
        out->limit = NETELECT_CTL_STATS_PAGE;
        if (af && get_id(af, &out->after, 0) < 0)
            ERR(-EINVAL, "\"after\" must be a node id (the previous reply's \"peers_next\")");
        if (li && (!json_is_integer(li) || json_integer_value(li) < 1 ||
                   json_integer_value(li) > NETELECT_CTL_STATS_PAGE))
            ERR(-EINVAL, "\"limit\" must be an integer in [1, %d]", NETELECT_CTL_STATS_PAGE);
        if (li)
            out->limit = (uint32_t)json_integer_value(li);
        break;
    }
    case NETELECT_CTL_PEER_ADD: {
        json_t *a = json_object_get(root, "addr");
        if (!json_is_string(a) ||
            agent_parse_addr(json_string_value(a), &out->addr, &out->addrlen, 0) < 0)
            ERR(-EINVAL, "\"addr\" must be a numeric \"address:port\" string ([v6]:port for IPv6)");
        break;
    }
    case NETELECT_CTL_CHANNEL_ADD:
    case NETELECT_CTL_CHANNEL_REMOVE: {
        json_t *n = json_object_get(root, "name");
        if (!json_is_string(n) || !agent_valid_chan_name(json_string_value(n)))
            ERR(-EINVAL, "\"name\" must be a channel name: 1..%d characters of "
                         "A-Z a-z 0-9 . _ : / @ -", NETELECT_CHAN_NAME_MAX);
        snprintf(out->name, sizeof out->name, "%s", json_string_value(n));
        json_t *m = json_object_get(root, "members");
        if (!m && out->verb == NETELECT_CTL_CHANNEL_ADD)
            ERR(-EINVAL, "channel-add needs \"members\"");
        if (!m)
            break;
        if (!json_is_array(m) || json_array_size(m) == 0)
            ERR(-EINVAL, "\"members\" must be a non-empty array of node ids");
        if (json_array_size(m) > NETELECT_CTL_MAX_MEMBERS)
            ERR(-E2BIG, "at most %d members per request", NETELECT_CTL_MAX_MEMBERS);
        out->members = calloc(json_array_size(m), sizeof *out->members);
        if (!out->members)
            ERR(-ENOMEM, "out of memory");
        out->has_members = 1;
        size_t idx;
        json_t *e;
        json_array_foreach(m, idx, e) {
            uint64_t id;
            if (get_id(e, &id, 1) < 0)
                ERR(-EINVAL, "members[%zu] is not a node id or \"self\"", idx);
            out->members[out->n_members++] = id;
        }
        size_t dup = first_duplicate(out->members, out->n_members);
        if (dup == SIZE_MAX)
            ERR(-ENOMEM, "out of memory");
        if (dup < out->n_members)
            ERR(-EINVAL, "members[%zu] is listed twice", dup);
        break;
    }
    case NETELECT_CTL_SET_RTT: {
        json_t *v = json_object_get(root, "rtt_ns");
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            ERR(-EINVAL, "\"rtt_ns\" must be a non-negative integer (nanoseconds)");
        out->rtt_ns = (uint64_t)json_integer_value(v);
        break;
    }
    case NETELECT_CTL_DRAIN:
    case NETELECT_CTL_UNDRAIN: {
        json_t *n = json_object_get(root, "channel");
        if (!n)
            break;
        if (!json_is_string(n) || !agent_valid_chan_name(json_string_value(n)))
            ERR(-EINVAL, "\"channel\" must be a channel name: 1..%d characters of "
                         "A-Z a-z 0-9 . _ : / @ -", NETELECT_CHAN_NAME_MAX);
        snprintf(out->name, sizeof out->name, "%s", json_string_value(n));
        out->has_channel = 1;
        break;
    }
    case NETELECT_CTL_SET_HEALTH: {
        json_t *v = json_object_get(root, "healthy");
        if (!json_is_boolean(v))
            ERR(-EINVAL, "\"healthy\" must be true or false");
        out->healthy = json_is_true(v);
        break;
    }
    default:
        break;
    }
out:
    json_decref(root);
    if (r < 0)
        agent_ctl_req_free(out);
    return r;
}
