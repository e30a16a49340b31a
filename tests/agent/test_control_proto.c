/* SPDX-License-Identifier: MIT */
/* Control request parser: good requests, and malformed ones with a message. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <string.h>

#include "agent/control_proto.h"

static int parse(const char *s, struct netelect_ctl_req *q, char *err)
{
    return agent_ctl_parse(s, strlen(s), q, err, 256);
}

Test(control_proto, good_requests, .timeout = 10)
{
    struct netelect_ctl_req q;
    char err[256];
    cr_assert_eq(parse("{\"cmd\":\"peer-add\",\"id\":\"0x11\",\"addr\":\"127.0.0.1:9000\"}", &q, err), 0, "%s", err);
    cr_assert_eq(q.verb, NETELECT_CTL_PEER_ADD);
    cr_assert_eq(q.id, 0x11);
    cr_assert_eq(q.addr.ss_family, AF_INET);
    agent_ctl_req_free(&q);
    cr_assert_eq(parse("{\"cmd\":\"peer-remove\",\"id\":17}", &q, err), 0, "%s", err);
    cr_assert_eq(q.id, 17);
    cr_assert_eq(parse("{\"cmd\":\"channel-add\",\"name\":\"orders\",\"members\":[\"self\",\"0xffffffffffffffff\",3]}", &q, err), 0, "%s", err);
    cr_assert_eq(q.n_members, 3);
    cr_assert_eq(q.members[0], 0);
    cr_assert_eq(q.members[1], UINT64_MAX);
    cr_assert_eq(q.members[2], 3);
    agent_ctl_req_free(&q);
    cr_assert_eq(parse("{\"cmd\":\"channel-remove\",\"name\":\"orders\"}", &q, err), 0, "%s", err);
    cr_assert_eq(q.has_members, 0);
    cr_assert_eq(parse("{\"cmd\":\"set-rtt\",\"id\":\"5\",\"rtt_ns\":1500000}", &q, err), 0, "%s", err);
    cr_assert_eq(q.rtt_ns, 1500000);
    cr_assert_eq(parse(" {\"cmd\":\"set-health\",\"id\":\"5\",\"healthy\":false} ", &q, err), 0, "%s", err);
    cr_assert_eq(q.healthy, 0);
    cr_assert_eq(parse("{\"cmd\":\"clear\",\"id\":\"5\"}", &q, err), 0, "%s", err);
    cr_assert_eq(parse("{\"cmd\":\"stats\"}", &q, err), 0, "%s", err);
    cr_assert(!agent_ctl_mutates(q.verb));
    cr_assert_eq(parse("{\"cmd\":\"reload\"}", &q, err), 0, "%s", err);
    cr_assert(agent_ctl_mutates(q.verb));
}

struct bad {
    char text[200];
    char what[48];
};

ParameterizedTestParameters(control_proto, malformed)
{
    static struct bad b[] = {
        {"", "malformed JSON"},
        {"garbage", "malformed JSON"},
        {"{\"cmd\":\"stats\"", "malformed JSON"},
        {"{\"cmd\":\"stats\"} {}", "malformed JSON"},
        {"[1,2]", "must be a JSON object"},
        {"{}", "missing \"cmd\""},
        {"{\"cmd\":5}", "missing \"cmd\""},
        {"{\"cmd\":\"launch\"}", "unknown cmd"},
        {"{\"cmd\":\"stats\",\"verbose\":true}", "unexpected key"},
        {"{\"cmd\":\"stats\",\"cmd\":\"reload\"}", "malformed JSON"},
        {"{\"cmd\":\"peer-add\",\"id\":\"0x11\"}", "\"addr\""},
        {"{\"cmd\":\"peer-add\",\"id\":\"0x11\",\"addr\":\"nohost\"}", "\"addr\""},
        {"{\"cmd\":\"peer-add\",\"id\":0,\"addr\":\"1.2.3.4:5\"}", "\"id\""},
        {"{\"cmd\":\"peer-add\",\"id\":-3,\"addr\":\"1.2.3.4:5\"}", "\"id\""},
        {"{\"cmd\":\"peer-add\",\"id\":\"0x1ffffffffffffffff\",\"addr\":\"1.2.3.4:5\"}", "\"id\""},
        {"{\"cmd\":\"peer-remove\"}", "\"id\""},
        {"{\"cmd\":\"channel-add\",\"name\":\"x\"}", "needs \"members\""},
        {"{\"cmd\":\"channel-add\",\"name\":\"x y\",\"members\":[1]}", "\"name\""},
        {"{\"cmd\":\"channel-add\",\"name\":\"x\",\"members\":[]}", "non-empty array"},
        {"{\"cmd\":\"channel-add\",\"name\":\"x\",\"members\":[1,1]}", "listed twice"},
        {"{\"cmd\":\"channel-add\",\"name\":\"x\",\"members\":[true]}", "members[0]"},
        {"{\"cmd\":\"set-rtt\",\"id\":\"1\",\"rtt_ns\":-1}", "rtt_ns"},
        {"{\"cmd\":\"set-rtt\",\"id\":\"1\",\"rtt_ns\":\"fast\"}", "rtt_ns"},
        {"{\"cmd\":\"set-health\",\"id\":\"1\",\"healthy\":\"yes\"}", "true or false"},
    };
    return cr_make_param_array(struct bad, b, sizeof b / sizeof b[0]);
}

ParameterizedTest(struct bad *b, control_proto, malformed, .timeout = 10)
{
    struct netelect_ctl_req q;
    char err[256] = "";
    int r = parse(b->text, &q, err);
    cr_assert_lt(r, 0, "accepted: %s", b->text);
    cr_assert(strstr(err, b->what), "'%s': message '%s' lacks '%s'", b->text, err, b->what);
    cr_assert_null(q.members);
}

Test(control_proto, oversized_and_binary, .timeout = 10)
{
    static char big[NETELECT_CTL_MAX_LINE + 10];
    memset(big, ' ', sizeof big);
    struct netelect_ctl_req q;
    char err[256];
    cr_assert_eq(agent_ctl_parse(big, sizeof big, &q, err, sizeof err), -E2BIG);
    const char bin[] = "{\"cmd\":\"st\0ats\"}";
    cr_assert_lt(agent_ctl_parse(bin, sizeof bin - 1, &q, err, sizeof err), 0);
}
