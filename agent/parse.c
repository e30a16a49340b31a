/* SPDX-License-Identifier: MIT */
#include "agent/parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int agent_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || !isdigit((unsigned char)*s))
        return -EINVAL; /* strtoull would accept "-1" and " 1" */
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno == ERANGE)
        return -ERANGE;
    if (*end)
        return -EINVAL;
    *out = v;
    return 0;
}

int agent_parse_id(const char *s, uint64_t *out)
{
    uint64_t v;
    int r = agent_parse_u64(s, &v);
    if (r < 0)
        return r;
    if (v == 0)
        return -EINVAL;
    *out = v;
    return 0;
}

int agent_parse_duration(const char *s, uint64_t *out_ns)
{
    if (!s || !*s || !(isdigit((unsigned char)*s) || *s == '.'))
        return -EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno == ERANGE || end == s || !isfinite(v) || v < 0)
        return -ERANGE;
    double mul;
    if (!strcmp(end, "ns"))
        mul = 1;
    else if (!strcmp(end, "us"))
        mul = 1e3;
    else if (!strcmp(end, "ms"))
        mul = 1e6;
    else if (!strcmp(end, "s"))
        mul = 1e9;
    else
        return -EINVAL;
    double ns = v * mul;
    if (ns >= 1.8e19)
        return -ERANGE;
    *out_ns = (uint64_t)(ns + 0.5);
    return 0;
}

int agent_parse_addr(const char *s, struct sockaddr_storage *out, socklen_t *len,
                         int allow_port0)
{
    char host[64];
    const char *port;
    if (!s)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof host)
            return -EINVAL;
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = 0;
        port = rb + 2;
    } else {
        const char *c = strrchr(s, ':');
        if (!c || (size_t)(c - s) >= sizeof host || strchr(s, ':') != c)
            return -EINVAL;
        memcpy(host, s, (size_t)(c - s));
        host[c - s] = 0;
        port = c + 1;
    }
    uint64_t p;
    if (agent_parse_u64(port, &p) < 0 || p > 65535 || (p == 0 && !allow_port0))
        return -EINVAL;
    if (*s == '[') {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            return -EINVAL;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)p);
        *len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)out;
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
            return -EINVAL;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)p);
        *len = sizeof *a;
    }
    return 0;
}

const char *agent_fmt_addr(const struct sockaddr *sa, char *buf, size_t len)
{
    char h[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, h, sizeof h);
        snprintf(buf, len, "%s:%u", h, ntohs(a->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, h, sizeof h);
        snprintf(buf, len, "[%s]:%u", h, ntohs(a->sin6_port));
    } else {
        snprintf(buf, len, "(family %d)", sa->sa_family);
    }
    return buf;
}

int agent_valid_chan_name(const char *s)
{
    size_t n = 0;
    if (!s)
        return 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (!(isalnum(c) || strchr("._:/@-", c)))
            return 0;
    }
    return n >= 1 && n <= NETELECT_CHAN_NAME_MAX;
}

char *agent_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}
