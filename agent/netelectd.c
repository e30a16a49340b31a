/* SPDX-License-Identifier: MIT */
/*
 * netelectd: measures RTT and health to this host's peers and publishes the
 * replica view into /dev/shm/<segment> for libnetelect readers.
 *
 * main() reads the options, starts up (one unwind path), runs the loop and
 * tears down.  The jobs live in their own files: reload.c (configuration),
 * udp.c (the probe protocol), publish.c (the segment), nodes.c (tables),
 * control.c (the control socket), serf_glue.c (Serf membership).
 *
 * One thread, one epoll loop:
 *   - the UDP socket (PINGs to answer, PONGs to time),
 *   - a timerfd set to the probe heap's earliest deadline,
 *   - a periodic heartbeat timerfd (netelect__writer_heartbeat, whatever happens),
 *   - a one-shot publish timerfd (coalescing: at most one publish per
 *     publish_min_interval, so any change is visible within that interval),
 *   - a signalfd (SIGINT/SIGTERM: exit cleanly; SIGHUP: reload),
 *   - the control socket and its clients, and the Serf RPC client if enabled.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <sodium.h>

#include "agent/agent.h"
#include "agent/clock.h"
#include "agent/evfd.h"
#include "agent/log.h"
#include "agent/metrics.h"
#include "agent/publish.h"
#include "agent/reload.h"
#include "agent/udp.h"
#if NETELECT_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif
#if NETELECT_HAVE_SERF
#include "agent/serf_glue.h"
#endif


static void usage(FILE *f)
{
    fprintf(f,
"usage: netelectd [options]\n"
"Measures RTT and health to this host's peers and publishes the replica view\n"
"for libnetelect readers in /dev/shm/<segment>.\n"
"\n"
"  -c, --config FILE     configuration (INI; see netelectd.conf.example); without\n"
"                        one, the embedded default: this host alone, channel\n"
"                        \"default\" = {self}, no peers, no key needed\n"
"      --check-config FILE  validate FILE (and its key file) and exit: 0 valid,\n"
"                        1 invalid (the error is printed as file:line: message)\n"
"      --gen-key FILE    write a new random 32-byte key (64 hex digits, mode 0600)\n"
"                        to FILE, which must not exist, and exit\n"
"      --shm NAME        segment name (default \"netelect\": /dev/shm/netelect)\n"
"      --control PATH    control socket (default " NETELECT_DEFAULT_CONTROL ")\n"
"      --listen ADDR     UDP probe address, a.b.c.d:port or [v6]:port (default 0.0.0.0:%d)\n"
"      --node-id ID      this node's id (default: [agent] node_id, else derived from\n"
"                        /etc/machine-id, else a random id kept in\n"
"                        <state_dir>/node-id; see agent/README.md, Node id)\n"
"  -h, --help            this text\n"
"  -V, --version         print the version and exit\n"
"\n"
"Signals: SIGHUP reloads the configuration (a bad one is logged and ignored);\n"
"SIGINT/SIGTERM mark the segment abandoned and exit 0.\n"
"Exit status: 0 clean exit, 1 start-up or configuration error, 2 usage error.\n",
            NETELECT_DEFAULT_PORT);
}

/*
 * Undoes start-up, on a clean exit and on every start-up failure: each step
 * is undone only if it was done, so one path serves all.  Memory is freed
 * not out of necessity (the process is ending) but so that leak checkers
 * see a clean exit and a real leak stands out.
 */
static void agent_free(struct agent *a)
{
#if NETELECT_HAVE_SERF
    agent_serf_stop(a);
#endif
    agent_metrics_close(a);
    agent_control_close(a);
    if (a->writer)
        netelect__writer_close(a->writer, true);
    if (a->udp >= 0)
        close(a->udp);
    sodium_memzero(a->key, sizeof a->key);
    agent_tables_free(a);
    agent_cfg_free(&a->cfg);
    if (a->ep >= 0)
        close(a->ep);
}

/* What the command line asks for besides running. */
enum run_mode { RUN_AGENT, RUN_EXIT_OK, RUN_USAGE, RUN_CHECK, RUN_GENKEY };

/* Parses the options into a (and *arg for --check-config / --gen-key). */
static enum run_mode parse_options(struct agent *a, int argc, char **argv, const char **arg)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"check-config", required_argument, NULL, 'C'},
        {"gen-key", required_argument, NULL, 'G'}, {"shm", required_argument, NULL, 's'},
        {"control", required_argument, NULL, 'k'}, {"listen", required_argument, NULL, 'l'},
        {"node-id", required_argument, NULL, 'n'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'}, {0}};
    const char *check = NULL, *genkey = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': a->cfg_path = optarg; break;
        case 'C': check = optarg; break;
        case 'G': genkey = optarg; break;
        case 's': a->opt_shm = optarg; break;
        case 'k':
            if (*optarg != '/' || strlen(optarg) >= sizeof a->cfg.control_path) {
                fprintf(stderr, "netelectd: --control wants an absolute path shorter than %zu bytes\n",
                        sizeof a->cfg.control_path);
                return RUN_USAGE;
            }
            a->opt_control = optarg;
            break;
        case 'l': {
            struct sockaddr_storage ss;
            socklen_t l;
            if (agent_parse_addr(optarg, &ss, &l, 1) < 0) {
                fprintf(stderr, "netelectd: --listen '%s' is not a numeric address:port\n", optarg);
                return RUN_USAGE;
            }
            a->opt_listen = optarg;
            break;
        }
        case 'n':
            if (agent_parse_id(optarg, &a->opt_node_id) < 0) {
                fprintf(stderr, "netelectd: --node-id '%s' is not a node id (1..2^64-1)\n", optarg);
                return RUN_USAGE;
            }
            break;
        case 'h': usage(stdout); return RUN_EXIT_OK;
        case 'V': printf("netelectd %s\n", NETELECT_VERSION_STRING); return RUN_EXIT_OK;
        default: usage(stderr); return RUN_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "netelectd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return RUN_USAGE;
    }
    *arg = genkey ? genkey : check;
    return genkey ? RUN_GENKEY : check ? RUN_CHECK : RUN_AGENT;
}

/* Everything up to the first publish: 0, or -1 after logging why (the
 * caller unwinds with agent_free). */
static int start(struct agent *a, char *shm_path, size_t shm_len)
{
    gid_t shm_gid;
    char id_origin[PATH_MAX + 160];
    a->start_ns = agent_now_ns();
    if (agent_config_start(a, &shm_gid, id_origin, sizeof id_origin) < 0)
        return -1;
    agent_udp_init(a);
    agent_loop_open(a);

    agent_apply_membership(a, &a->cfg);
    char inherit_msg[384];
    int inherit_level;
    agent_inherit_old_view(a, inherit_msg, sizeof inherit_msg, &inherit_level);
    if (agent_publish_open(a, shm_gid) < 0)
        return -1;
    if (a->have_key) {
        int r = agent_udp_open(a);
        if (r < 0) {
            LOG_E("cannot listen on UDP %s: %s", a->cfg.listen, strerror(-r));
            return -1;
        }
    }
    if (agent_control_open(a) < 0 || agent_metrics_open(a) < 0)
        return -1;
#if NETELECT_HAVE_SERF
    if (a->cfg.serf_enabled && agent_serf_start(a) < 0)
        return -1;
#endif
    agent_publish(a);
    agent_heartbeat_arm(a);
    agent_probes_run(a);

    snprintf(shm_path, shm_len, "%s%.127s", strchr(a->cfg.shm_name, '/') ? "" : "/dev/shm/",
             a->cfg.shm_name);
    char lb[128];
    if (a->have_key)
        snprintf(lb, sizeof lb, "probing from UDP %.79s", a->cfg.listen);
    else
        snprintf(lb, sizeof lb, "no key_file, so no peers and no UDP probing");
    LOG_N("netelectd %s started: node %#llx (%s), publishing %s, control %s, config %s, "
          "%zu peers, %zu channels, %s", NETELECT_VERSION_STRING, (unsigned long long)a->self,
          id_origin, shm_path, a->cfg.control_path, a->cfg.source, a->cfg.n_peers, a->n_chans, lb);
    agent_log(inherit_level, "%s", inherit_msg);
    return 0;
}

static void signalled(struct agent *a)
{
    struct signalfd_siginfo si;
    char err[NETELECT_CFG_ERR_LEN];
    while (read(a->sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            LOG_I("SIGHUP: reloading %s", a->cfg_path ? a->cfg_path : "(embedded default)");
            agent_reload(a, err, sizeof err);
        } else {
            LOG_N("%s: exiting", strsignal((int)si.ssi_signo));
            a->quit = true;
        }
    }
}

static void run(struct agent *a)
{
    bool watchdog = false;
#if NETELECT_HAVE_SYSTEMD
    uint64_t wd_usec = 0;
    watchdog = sd_watchdog_enabled(0, &wd_usec) > 0;
    if (watchdog && wd_usec < 2 * a->cfg.heartbeat_ns / 1000)
        LOG_W("WatchdogSec (%.3f s) is shorter than twice [segment] heartbeat (%.3f s), "
              "which pings it: systemd may kill a healthy agent", wd_usec / 1e6,
              a->cfg.heartbeat_ns / 1e9);
#endif
    struct epoll_event evs[64];
    while (!a->quit) {
        int n = epoll_wait(a->ep, evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            DIE("epoll_wait: %s", strerror(errno));
        }
        bool probes = false;
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64 >> 56;
            /* epoll data packs an 8-bit tag over a user-space pointer (< 2^56). */
            void *ptr = (void *)(uintptr_t)(evs[i].data.u64 & ((1ull << 56) - 1)); // NOLINT(performance-no-int-to-ptr)
            switch (tag) {
            case EV_UDP: agent_udp_readable(a); break;
            case EV_CTL: agent_control_accept(a); break;
            case EV_CLIENT: agent_control_event(a, ptr, evs[i].events); break;
            case EV_CTL_T: agent_fd_drain(a->ctl_tfd); agent_control_timer(a); break;
            case EV_METRICS: agent_metrics_event(a); break;
            case EV_PROBE: agent_fd_drain(a->probe_tfd); probes = true; break;
            case EV_PUB: agent_fd_drain(a->pub_tfd); a->pub_armed = false; break;
            case EV_HB:
                agent_fd_drain(a->hb_tfd);
                agent_auth_log_flush(agent_now_ns());
                agent_heartbeat(a, watchdog);
                break;
            case EV_SIG: signalled(a); break;
#if NETELECT_HAVE_SERF
            case EV_SERF: agent_serf_io(a, evs[i].events); break;
            case EV_SERF_T: agent_fd_drain(a->serf_tfd); agent_serf_timer(a); break;
#endif
            default: break;
            }
        }
        /* Probes run after I/O so replies that arrived in this batch are
         * counted before their timeouts are judged. */
        if (probes)
            agent_probes_run(a);
        else
            agent_probes_arm(a);
        agent_maybe_publish(a);
    }
}

int main(int argc, char **argv)
{
    struct agent ag = {.udp = -1, .ctl_fd = -1, .ctl_tfd = -1, .ep = -1, .ctl_gid = (gid_t)-1, .serf_fd = -1,
                       .serf_tfd = -1};
    struct agent *a = &ag;
    const char *arg = NULL;
    char err[NETELECT_CFG_ERR_LEN];
    enum run_mode mode = parse_options(a, argc, argv, &arg);
    if (mode == RUN_EXIT_OK)
        return 0;
    if (mode == RUN_USAGE)
        return 2;
    if (sodium_init() < 0) {
        fprintf(stderr, "netelectd: libsodium failed to initialise\n");
        return 1;
    }
    if (mode == RUN_GENKEY) {
        if (agent_key_generate(arg, err, sizeof err) < 0) {
            fprintf(stderr, "netelectd: --gen-key: %s\n", err);
            return 1;
        }
        printf("netelectd: wrote a new key to %s (mode 0600); copy it to every peer\n", arg);
        return 0;
    }
    if (mode == RUN_CHECK)
        return agent_check_config(a, arg);

    agent_log_init(NETELECT_LOG_INFO);
    char shm_path[192];
    if (start(a, shm_path, sizeof shm_path) < 0) {
        agent_free(a);
        return 1;
    }
    run(a);
#if NETELECT_HAVE_SYSTEMD
    sd_notify(0, "STOPPING=1");
#endif
    agent_free(a);
    LOG_I("segment %s marked abandoned; bye", shm_path);
    return 0;
}
