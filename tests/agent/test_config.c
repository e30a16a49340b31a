/* SPDX-License-Identifier: MIT */
/* Config loader: good files, and bad ones rejected with the right line. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/config.h"

static int load(const char *text, struct netelect_cfg *c, char *err)
{
    return agent_cfg_load_buffer(text, strlen(text), "t.conf", c, err, NETELECT_CFG_ERR_LEN);
}

Test(config, full_example_parses, .timeout = 10)
{
    const char *text =
        "; comment\n"
        "# another\n"
        "[agent]\n"
        "node_id = 0x10\n"
        "listen = [::]:7707\n"
        "key_file = /etc/netelect/key\n"
        "log_level = debug\n"
        "control = /run/x/control\n"
        "control_group = netelect\n"
        "rate_limit = 50\n"
        "rate_burst = 60\n"
        "[probe]\n"
        "interval = 50ms\n"
        "timeout = 40ms\n"
        "misses = 4\n"
        "flap_threshold = 2\n"
        "flap_rise = 5\n"
        "flap_half_life = 30s\n"
        "[segment]\n"
        "name = test-seg\n"
        "mode = 0640\n"
        "group = netelect-readers\n"
        "heartbeat = 200ms\n"
        "publish_min_interval = 500us\n"
        "rtt_change_pct = 5\n"
        "[peers]\n"
        "0x11 = 192.0.2.11:7707\n"
        "18 = [2001:db8::12]:7708\n"
        "[channels]\n"
        "orders = self, 0x11, 18\n"
        "orders = 0x13 ; more members on another line\n"
        "audit = 0x11\n"
        "[serf]\n"
        "enabled = yes\n"
        "rpc_addr = 127.0.0.1:7373\n"
        "auth_key = secret\n"
        "id_tag = nid\n"
        "channel_tag = chans\n"
        "coord_period = 1s\n";
    struct netelect_cfg c;
    char err[NETELECT_CFG_ERR_LEN];
    int r = load(text, &c, err);
    cr_assert_eq(r, 0, "%s", err);
    cr_assert_eq(c.node_id, 0x10);
    cr_assert_str_eq(c.key_file, "/etc/netelect/key");
    cr_assert_eq(c.log_level, NETELECT_LOG_DEBUG);
    cr_assert_eq(c.rate_pps, 50);
    cr_assert_eq(c.probe_interval_ns, 50000000ull);
    cr_assert_eq(c.probe_timeout_ns, 40000000ull);
    cr_assert_eq(c.probe_misses, 4);
    cr_assert_eq(c.flap_half_life_ns, 30000000000ull);
    cr_assert_str_eq(c.shm_name, "test-seg");
    cr_assert_eq(c.shm_mode, 0640);
    cr_assert_eq(c.publish_min_interval_ns, 500000ull);
    cr_assert_eq(c.n_peers, 2);
    cr_assert_eq(c.peers[1].id, 18);
    cr_assert_eq(c.peers[1].addr.ss_family, AF_INET6);
    cr_assert_eq(c.n_chans, 2);
    cr_assert_str_eq(c.chans[0].name, "orders");
    cr_assert_eq(c.chans[0].n, 4);
    cr_assert_eq(c.chans[0].members[0], 0, "self is stored as 0");
    cr_assert_eq(c.chans[0].members[3], 0x13);
    cr_assert(c.serf_enabled);
    cr_assert_str_eq(c.serf_channel_tag, "chans");
    agent_cfg_free(&c);
}

Test(config, empty_file_gives_defaults, .timeout = 10)
{
    struct netelect_cfg c;
    char err[NETELECT_CFG_ERR_LEN];
    cr_assert_eq(load("", &c, err), 0);
    cr_assert_eq(c.probe_interval_ns, 100000000ull);
    cr_assert_eq(c.probe_timeout_ns, 100000000ull);
    cr_assert_eq(c.probe_misses, 3);
    cr_assert_str_eq(c.shm_name, "netelect");
    cr_assert_str_eq(c.control_path, NETELECT_DEFAULT_CONTROL);
    cr_assert_eq(c.n_peers, 0);
    agent_cfg_free(&c);
}

/* Arrays, not pointers: Criterion copies parameters into another process. */
struct bad {
    char text[400];
    char where[16]; /* expected prefix of the message */
    char what[48];  /* expected substring */
};

ParameterizedTestParameters(config, bad_configs)
{
    static struct bad b[] = {
        {"[agent]\nnode_id = 0\n", "t.conf:2:", "node_id"},
        {"[agent]\nnode_id = -5\n", "t.conf:2:", "node_id"},
        {"[agent]\nnode_id = 0x1zz\n", "t.conf:2:", "node_id"},
        {"\n\n[agent]\nbogus = 1\n", "t.conf:4:", "unknown key 'bogus'"},
        {"[nosuch]\nx = 1\n", "t.conf:2:", "unknown section"},
        {"[agent]\nthis line has no equals sign\n", "t.conf:2:", "syntax error"},
        {"[agent\n", "t.conf:1:", "syntax error"},
        {"[probe]\ninterval = 100\n", "t.conf:2:", "not a duration"},
        {"[probe]\ninterval = 100 parsecs\n", "t.conf:2:", "not a duration"},
        {"[probe]\ninterval = 0ms\n", "t.conf:2:", "out of range"},
        {"[probe]\nmisses = 0\n", "t.conf:2:", "misses"},
        {"[probe]\ninterval = 50ms\ntimeout = 80ms\n", "t.conf:", "must not exceed interval"},
        {"[segment]\nmode = 0666\n", "t.conf:2:", "writable"},
        {"[segment]\nmode = 644\n", "t.conf:2:", "octal"},
        {"[peers]\n0x11 = 10.0.0.1\n", "t.conf:2:", "address"},
        {"[peers]\n0x11 = example.com:7707\n", "t.conf:2:", "address"},
        {"[peers]\n0x11 = 10.0.0.1:99999\n", "t.conf:2:", "address"},
        {"[agent]\nkey_file = /k\n[peers]\n0x11 = 10.0.0.1:1\n0x11 = 10.0.0.2:1\n", "t.conf:5:", "twice"},
        {"; no key\n[peers]\n0x11 = 10.0.0.1:7707\n", "t.conf:3:", "key_file is not set"},
        {"[agent]\nnode_id = 5\nkey_file = /k\n[peers]\n5 = 10.0.0.1:7707\n", "t.conf:5:", "own node_id"},
        {"[channels]\nbad name! = 1\n", "t.conf:2:", "channel name"},
        {"[channels]\nc = 1, 2, 1\n", "t.conf:2:", "listed twice"},
        {"[channels]\nc = 1, , 2\n", "t.conf:2:", "empty member"},
        {"[channels]\nc = 1, zero\n", "t.conf:2:", "not a node id"},
        {"[agent]\nkey_file = relative/key\n", "t.conf:2:", "absolute"},
        {"[agent]\nkey_file = /k\n[peers]\n1 = 10.0.0.1:1\n2 = [::1]:7707\n", "t.conf:5:", "IPv6 address"},
        {"[agent]\nlog_level = chatty\n", "t.conf:2:", "log_level"},
        {"[serf]\nenabled = perhaps\n", "t.conf:2:", "yes/no"},
        {"[serf]\nrpc_addr = localhost\n", "t.conf:2:", "rpc_addr"},
        {"[agent]\nrtt_hysteresis = 101%\n", "t.conf:2:", "rtt_hysteresis: '101%'"},
        {"[agent]\nrtt_hysteresis = -5%\n", "t.conf:2:", "percentage in [0%, 100%]"},
        {"[agent]\nrtt_hysteresis = 2.5%\n", "t.conf:2:", "percentage in [0%, 100%]"},
        {"[agent]\nrtt_hysteresis = %\n", "t.conf:2:", "percentage"},
        {"[agent]\nrtt_hysteresis = 0x14\n", "t.conf:2:", "percentage"},
        {"[agent]\nrtt_hysteresis = 99999999999999999999999%\n", "t.conf:2:", "percentage"},
        {"[agent]\nrtt_hysteresis_min = 50\n", "t.conf:2:", "not a duration"},
        {"[agent]\nrtt_hysteresis_min = 101ms\n", "t.conf:2:", "rtt_hysteresis_min: 101ms is out of range"},
        {"[channels]\nc = 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,"
         "31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,"
         "62,63,64,65,66,67,68,69,70\n",
         "t.conf:2:", "longer than"},
    };
    return cr_make_param_array(struct bad, b, sizeof b / sizeof b[0]);
}

ParameterizedTest(struct bad *b, config, bad_configs, .timeout = 10)
{
    struct netelect_cfg c;
    char err[NETELECT_CFG_ERR_LEN];
    int r = load(b->text, &c, err);
    cr_assert_lt(r, 0, "accepted: %s", b->text);
    cr_assert(!strncmp(err, b->where, strlen(b->where)), "message '%s' does not start with '%s'", err,
              b->where);
    cr_assert(strstr(err, b->what), "message '%s' lacks '%s'", err, b->what);
}

Test(config, rtt_hysteresis_keys, .timeout = 10)
{
    struct netelect_cfg c;
    char err[NETELECT_CFG_ERR_LEN];
    cr_assert_eq(load("", &c, err), 0);
    cr_assert(c.rtt_hyst_pct == 0 && c.rtt_hyst_min_ns == 0, "off by default");
    agent_cfg_free(&c);
    cr_assert_eq(load("[agent]\nrtt_hysteresis = 20%\nrtt_hysteresis_min = 50us\n", &c, err), 0, "%s", err);
    cr_assert_eq(c.rtt_hyst_pct, 20);
    cr_assert_eq(c.rtt_hyst_min_ns, 50000);
    agent_cfg_free(&c);
    cr_assert_eq(load("[agent]\nrtt_hysteresis = 08\nrtt_hysteresis_min = 100ms\n", &c, err), 0, "%s", err);
    cr_assert_eq(c.rtt_hyst_pct, 8, "decimal, not octal; the %% sign is optional");
    cr_assert_eq(c.rtt_hyst_min_ns, 100000000);
    agent_cfg_free(&c);
    cr_assert_eq(load("[agent]\nrtt_hysteresis = 100%\nrtt_hysteresis_min = 0us\n", &c, err), 0, "%s", err);
    cr_assert_eq(c.rtt_hyst_pct, 100);
    agent_cfg_free(&c);
}

Test(config, nul_and_garbage_bytes_are_errors_not_crashes, .timeout = 10)
{
    const char text[] = "[agent]\nnode_id = 1\0\n[peers]\n";
    struct netelect_cfg c;
    char err[NETELECT_CFG_ERR_LEN];
    int r = agent_cfg_load_buffer(text, sizeof text - 1, "t.conf", &c, err, sizeof err);
    cr_assert_lt(r, 0);
    cr_assert(strstr(err, "t.conf:2:"), "%s", err);
    unsigned char junk[512];
    unsigned s = 12345;
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (unsigned char)((s = s * 1103515245u + 12345u) >> 16);
        r = agent_cfg_load_buffer((const char *)junk, sizeof junk, "j", &c, err, sizeof err);
        if (r == 0)
            agent_cfg_free(&c);
    }
}

Test(config, load_file_reports_path_and_line, .timeout = 10)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/netelect-cfg-%d.conf", (int)getpid());
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("[agent]\nnode_id = 7\n\n[probe]\nmisses = lots\n", f);
    fclose(f);
    struct netelect_cfg c;
    char err[NETELECT_CFG_ERR_LEN], want[96];
    int r = agent_cfg_load_file(path, &c, err, sizeof err);
    unlink(path);
    snprintf(want, sizeof want, "%s:5:", path);
    cr_assert_lt(r, 0);
    cr_assert(!strncmp(err, want, strlen(want)), "%s", err);
    r = agent_cfg_load_file("/nonexistent/netelect.conf", &c, err, sizeof err);
    cr_assert_eq(r, -ENOENT);
    cr_assert(strstr(err, "/nonexistent/netelect.conf"), "%s", err);
}

Test(config, key_files, .timeout = 10)
{
    char path[64], err[NETELECT_CFG_ERR_LEN];
    uint8_t key[32], key2[32];
    snprintf(path, sizeof path, "/tmp/netelect-key-%d", (int)getpid());
    unlink(path);
    cr_assert_eq(agent_key_generate(path, err, sizeof err), 0, "%s", err);
    cr_assert_lt(agent_key_generate(path, err, sizeof err), 0, "must not overwrite");
    cr_assert_eq(agent_key_load(path, key, err, sizeof err), 0, "%s", err);
    struct stat st;
    stat(path, &st);
    cr_assert_eq(st.st_mode & 0777, 0600);
    chmod(path, 0644);
    cr_assert_eq(agent_key_load(path, key2, err, sizeof err), -EPERM);
    cr_assert(strstr(err, "chmod 600"), "%s", err);
    chmod(path, 0600);
    FILE *f = fopen(path, "w");
    fputs("abcd\n", f);
    fclose(f);
    cr_assert_eq(agent_key_load(path, key2, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "64 hex digits"), "%s", err);
    f = fopen(path, "w");
    fputs("zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", f);
    fclose(f);
    cr_assert_eq(agent_key_load(path, key2, err, sizeof err), -EINVAL);
    unlink(path);
}

Test(config, default_node_id_is_stable_and_keyed, .timeout = 10)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/netelect-mid-%d", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs("3d1219c7c4c5404aaa1f6d2a48adfda4\n", f);
    fclose(f);
    uint64_t a, b;
    cr_assert_eq(agent_default_node_id(path, &a), 0);
    cr_assert_eq(agent_default_node_id(path, &b), 0);
    cr_assert_eq(a, b);
    cr_assert_neq(a, 0);
    cr_assert_neq(a, 0x3d1219c7c4c5404aull, "the machine id itself must not leak");
    f = fopen(path, "w");
    fputs("4d1219c7c4c5404aaa1f6d2a48adfda4\n", f);
    fclose(f);
    cr_assert_eq(agent_default_node_id(path, &b), 0);
    cr_assert_neq(a, b);
    f = fopen(path, "w");
    fputs("uninitialized\n", f);
    fclose(f);
    cr_assert_eq(agent_default_node_id(path, &b), -ENOENT);
    unlink(path);
}

static void rm_tree(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(config, node_id_without_machine_id_is_generated_once_and_kept, .timeout = 10)
{
    char tmp[] = "/tmp/netelect-state-XXXXXX", missing[128], sdir[128], file[160];
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(missing, sizeof missing, "%s/machine-id", tmp); /* never created */
    snprintf(sdir, sizeof sdir, "%s/var/lib/netelect", tmp); /* created by the call */
    snprintf(file, sizeof file, "%s/node-id", sdir);
    char err[NETELECT_CFG_ERR_LEN] = "";
    struct netelect_node_id_origin o;
    uint64_t a = 0, b = 0;

    cr_assert_eq(agent_node_id_resolve(missing, NULL, &a, &o, err, sizeof err), -ENOENT);
    cr_assert(strstr(err, missing), "%s", err);

    cr_assert_eq(agent_node_id_resolve(missing, sdir, &a, &o, err, sizeof err), 0, "%s", err);
    cr_assert_eq(o.source, NETELECT_NODE_ID_GENERATED);
    cr_assert_str_eq(o.path, file);
    cr_assert_neq(a, 0);
    struct stat st;
    cr_assert_eq(lstat(file, &st), 0);
    cr_assert(S_ISREG(st.st_mode));
    cr_assert_eq(st.st_mode & 07777, 0600, "node-id mode %04o", (unsigned)(st.st_mode & 07777));
    cr_assert_eq(lstat(sdir, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0700, "state dir mode %04o", (unsigned)(st.st_mode & 07777));
    FILE *f = fopen(file, "r");
    char line[64] = "";
    cr_assert_not_null(fgets(line, sizeof line, f));
    fclose(f);
    char want[64];
    snprintf(want, sizeof want, "0x%016llx\n", (unsigned long long)a);
    cr_assert_str_eq(line, want);
    char ls[256];
    snprintf(ls, sizeof ls, "test \"$(ls -A '%s')\" = node-id", sdir);
    cr_assert_eq(system(ls), 0, "no temporary file is left behind");

    /* a second start reads the same id back */
    cr_assert_eq(agent_node_id_resolve(missing, sdir, &b, &o, err, sizeof err), 0, "%s", err);
    cr_assert_eq(o.source, NETELECT_NODE_ID_STATE_FILE);
    cr_assert_eq(b, a);

    /* a machine id, once there, wins */
    f = fopen(missing, "w");
    fputs("3d1219c7c4c5404aaa1f6d2a48adfda4\n", f);
    fclose(f);
    uint64_t m;
    cr_assert_eq(agent_default_node_id(missing, &m), 0);
    cr_assert_eq(agent_node_id_resolve(missing, sdir, &b, &o, err, sizeof err), 0, "%s", err);
    cr_assert_eq(o.source, NETELECT_NODE_ID_MACHINE_ID);
    cr_assert_eq(b, m);
    unlink(missing);

    /* an id others may write, or a damaged file, is refused, never replaced */
    cr_assert_eq(chmod(file, 0620), 0);
    cr_assert_eq(agent_node_id_resolve(missing, sdir, &b, &o, err, sizeof err), -EPERM);
    cr_assert(strstr(err, "chmod 600"), "%s", err);
    cr_assert_eq(chmod(file, 0600), 0);
    f = fopen(file, "w");
    fputs("0x0\n", f);
    fclose(f);
    cr_assert_eq(agent_node_id_resolve(missing, sdir, &b, &o, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "not a node id"), "%s", err);
    f = fopen(file, "r");
    cr_assert_not_null(fgets(line, sizeof line, f));
    fclose(f);
    cr_assert_str_eq(line, "0x0\n");
    rm_tree(tmp);
}

Test(config, node_id_generated_by_racing_starts_is_one_id, .timeout = 20)
{
    char tmp[] = "/tmp/netelect-state-XXXXXX", missing[128];
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(missing, sizeof missing, "%s/machine-id", tmp);
    enum { N = 8 };
    int fds[N][2];
    for (int i = 0; i < N; i++) {
        cr_assert_eq(pipe(fds[i]), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            char err[NETELECT_CFG_ERR_LEN];
            struct netelect_node_id_origin o;
            uint64_t id = 0;
            if (agent_node_id_resolve(missing, tmp, &id, &o, err, sizeof err) < 0)
                id = 0;
            _exit(write(fds[i][1], &id, sizeof id) == (ssize_t)sizeof id ? 0 : 1);
        }
        close(fds[i][1]);
    }
    uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        cr_assert_eq(read(fds[i][0], &ids[i], sizeof ids[i]), (ssize_t)sizeof ids[i]);
        close(fds[i][0]);
        cr_assert_neq(ids[i], 0);
        cr_assert_eq(ids[i], ids[0], "start %d got %#llx, start 0 %#llx", i,
                     (unsigned long long)ids[i], (unsigned long long)ids[0]);
    }
    while (wait(NULL) > 0)
        ;
    rm_tree(tmp);
}

Test(config, state_dir_key_and_default, .timeout = 10)
{
    struct netelect_cfg c;
    char err[NETELECT_CFG_ERR_LEN], dir[PATH_MAX];
    cr_assert_eq(load("[agent]\nstate_dir = /srv/ne\n", &c, err), 0, "%s", err);
    cr_assert_str_eq(c.state_dir, "/srv/ne");
    cr_assert_eq(agent_state_dir_default(c.state_dir, dir, sizeof dir, err, sizeof err), 0);
    cr_assert_str_eq(dir, "/srv/ne");
    agent_cfg_free(&c);
    cr_assert_eq(load("[agent]\nstate_dir = var/lib\n", &c, err), -EINVAL);
    cr_assert(strstr(err, "t.conf:2: state_dir"), "%s", err);
    if (geteuid() == 0) {
        cr_assert_eq(agent_state_dir_default("", dir, sizeof dir, err, sizeof err), 0);
        cr_assert_str_eq(dir, NETELECT_DEFAULT_STATE_DIR);
    } else {
        setenv("XDG_STATE_HOME", "/xdg/state", 1);
        cr_assert_eq(agent_state_dir_default("", dir, sizeof dir, err, sizeof err), 0);
        cr_assert_str_eq(dir, "/xdg/state/netelect");
        setenv("XDG_STATE_HOME", "relative", 1);
        setenv("HOME", "/home/u", 1);
        cr_assert_eq(agent_state_dir_default(NULL, dir, sizeof dir, err, sizeof err), 0);
        cr_assert_str_eq(dir, "/home/u/.local/state/netelect");
        unsetenv("HOME");
        cr_assert_eq(agent_state_dir_default(NULL, dir, sizeof dir, err, sizeof err), -ENOENT);
        cr_assert(strstr(err, "state_dir"), "%s", err);
    }
}

Test(config, shipped_example_is_valid, .timeout = 10)
{
    struct netelect_cfg c;
    char err[NETELECT_CFG_ERR_LEN];
    /* The content is what ships; the checkout's mode is not (git archive
     * writes 0664, which the agent rightly refuses for a live config). */
    static char buf[1 << 16];
    FILE *f = fopen(NETELECT_EXAMPLE_CONF, "r");
    cr_assert_not_null(f);
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    cr_assert_lt(n, sizeof buf);
    int r = agent_cfg_load_buffer(buf, n, NETELECT_EXAMPLE_CONF, &c, err, sizeof err);
    cr_assert_eq(r, 0, "%s", err);
    cr_assert_eq(c.node_id, 0x10);
    cr_assert_eq(c.n_peers, 3);
    cr_assert_eq(c.n_chans, 2);
    cr_assert_eq(c.chans[0].n, 4);
    agent_cfg_free(&c);
}

Test(config, channel_members_continue_on_indented_lines, .timeout = 10)
{
    struct netelect_cfg c;
    char err[NETELECT_CFG_ERR_LEN];
    int r = load("[channels]\nc = 1, 2\n    3, 4\nc = 5\n", &c, err);
    cr_assert_eq(r, 0, "%s", err);
    cr_assert_eq(c.n_chans, 1);
    cr_assert_eq(c.chans[0].n, 5);
    cr_assert_eq(c.chans[0].members[4], 5);
    agent_cfg_free(&c);
}

/* The configuration (which can hold the Serf auth key)
 * is checked like the key file: owner, and who may write or read it. */
Test(config, config_file_owner_and_mode, .timeout = 10)
{
    char path[64], err[NETELECT_CFG_ERR_LEN];
    struct netelect_cfg c;
    snprintf(path, sizeof path, "/tmp/netelect-cfgperm-%d.conf", (int)getpid());
    unlink(path);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("[agent]\nnode_id = 7\n", f);
    fclose(f);
    cr_assert_eq(chmod(path, 0644), 0);
    cr_assert_eq(agent_cfg_load_file(path, &c, err, sizeof err), 0, "%s", err);
    agent_cfg_free(&c);
    cr_assert_eq(chmod(path, 0666), 0);
    cr_assert_eq(agent_cfg_load_file(path, &c, err, sizeof err), -EPERM,
                 "a world-writable configuration is refused");
    cr_assert(strstr(err, path) && strstr(err, "mode 0666") && strstr(err, "chmod go-w"), "%s", err);
    cr_assert_eq(chmod(path, 0664), 0);
    cr_assert_eq(agent_cfg_load_file(path, &c, err, sizeof err), -EPERM, "group-writable too");
    /* a secret in it: nobody else may read it */
    f = fopen(path, "w");
    fputs("[agent]\nnode_id = 7\n[serf]\nauth_key = s3cret\n", f);
    fclose(f);
    cr_assert_eq(chmod(path, 0644), 0);
    cr_assert_eq(agent_cfg_load_file(path, &c, err, sizeof err), -EPERM,
                 "a readable configuration holding [serf] auth_key is refused");
    cr_assert(strstr(err, "auth_key") && strstr(err, "chmod 600") && !strstr(err, "s3cret"), "%s",
              err);
    cr_assert_eq(chmod(path, 0600), 0);
    cr_assert_eq(agent_cfg_load_file(path, &c, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(c.serf_auth_key, "s3cret");
    agent_cfg_free(&c);
    /* owned by another user: refused even at 0600 */
    if (geteuid() == 0) {
        cr_assert_eq(chown(path, 65534, 65534), 0);
        cr_assert_eq(agent_cfg_load_file(path, &c, err, sizeof err), -EPERM);
        cr_assert(strstr(err, "owned by uid 65534") && strstr(err, "chown"), "%s", err);
    }
    unlink(path);
}

Test(config, key_file_owner, .timeout = 10)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to give the key file to another user");
    char path[64], err[NETELECT_CFG_ERR_LEN];
    uint8_t key[32];
    snprintf(path, sizeof path, "/tmp/netelect-keyown-%d", (int)getpid());
    unlink(path);
    cr_assert_eq(agent_key_generate(path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(chown(path, 65534, 65534), 0);
    cr_assert_eq(agent_key_load(path, key, err, sizeof err), -EPERM,
                 "a 0600 key file owned by another user is refused: that user could replace it");
    cr_assert(strstr(err, "key file") && strstr(err, "owned by uid 65534"), "%s", err);
    cr_assert_eq(chown(path, 0, 0), 0);
    cr_assert_eq(agent_key_load(path, key, err, sizeof err), 0, "%s", err);
    unlink(path);
}

Test(config, metrics_listen, .timeout = 10)
{
    struct netelect_cfg c;
    char err[NETELECT_CFG_ERR_LEN];
    cr_assert_eq(load("[agent]\n", &c, err), 0, "%s", err);
    cr_assert_str_empty(c.metrics_listen, "off by default");
    agent_cfg_free(&c);
    cr_assert_eq(load("[metrics]\nlisten = 127.0.0.1:9707\n", &c, err), 0, "%s", err);
    cr_assert_str_eq(c.metrics_listen, "127.0.0.1:9707");
    cr_assert_eq(c.metrics_addr.ss_family, AF_INET);
    agent_cfg_free(&c);
    cr_assert_eq(load("[metrics]\nlisten = [::1]:9707\n", &c, err), 0, "%s", err);
    cr_assert_eq(c.metrics_addr.ss_family, AF_INET6);
    agent_cfg_free(&c);
    cr_assert_eq(load("[metrics]\nlisten = 127.0.0.1:9707\nlisten =\n", &c, err), 0, "%s", err);
    cr_assert_str_empty(c.metrics_listen, "an empty value turns it off again");
    agent_cfg_free(&c);
    cr_assert_lt(load("[metrics]\nlisten = localhost:9707\n", &c, err), 0);
    cr_assert(strstr(err, ":2: metrics listen"), "%s", err);
    cr_assert_lt(load("[metrics]\nlisten = 127.0.0.1:0\n", &c, err), 0, "port 0 is refused");
    cr_assert_lt(load("[metrics]\nport = 9707\n", &c, err), 0);
    cr_assert(strstr(err, "unknown key 'port' in [metrics]"), "%s", err);
}
