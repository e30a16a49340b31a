/* SPDX-License-Identifier: MIT */
/*
 * netelectd's configuration: an INI file (format: agent/netelectd.conf.example)
 * parsed by inih.  Loading is pure (a path or a memory buffer in, a struct or
 * "file:line: message" out), so --check-config, SIGHUP and the fuzzers share
 * it.  The key file and group names are resolved separately, by the caller,
 * because they touch the system.
 */
#ifndef AGENT_CONFIG_H
#define AGENT_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "agent/parse.h"

#define NETELECT_DEFAULT_PORT 7707
#define NETELECT_DEFAULT_CONTROL "/run/netelect/control"
#define NETELECT_KEY_LEN 32
#define NETELECT_CFG_ERR_LEN 512
/* inih reads at most this many bytes of a line (Debian's INI_MAX_LINE=200
 * minus CR, LF and NUL); longer lines are refused rather than split. */
#define NETELECT_CFG_MAX_LINE 197

enum netelect_log_level { NETELECT_LOG_ERR = 3, NETELECT_LOG_WARN = 4, NETELECT_LOG_NOTICE = 5,
                          NETELECT_LOG_INFO = 6, NETELECT_LOG_DEBUG = 7 };

struct netelect_cfg_peer {
    uint64_t id;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int line;
};

struct netelect_cfg_chan {
    char name[NETELECT_CHAN_NAME_MAX + 1];
    uint64_t *members;
    size_t n, cap;
    int line;
};

struct netelect_cfg {
    char source[PATH_MAX];          /* file name, or "<embedded default>" */
    uint64_t node_id;               /* 0: derive (agent_node_id_resolve) */
    int node_id_line;
    char state_dir[PATH_MAX];       /* "": the default (agent_state_dir_default) */
    char listen[80];
    struct sockaddr_storage listen_addr;
    socklen_t listen_len;
    char key_file[PATH_MAX];        /* "" : no key, so no peers may be configured */
    int key_file_line;
    int log_level;
    char control_path[108];         /* sun_path size */
    char control_group[64];         /* "" : only root and the agent's uid */
    uint32_t rate_pps, rate_burst;  /* per-source token bucket */
    /* [limits]: what the control socket and Serf may add (agent/README.md) */
    uint32_t max_nodes, max_chans, max_members;
    /* control socket: connections per non-root uid; a request line must be
     * complete within request_timeout; a quiet connection closes after idle */
    uint32_t control_per_uid;
    uint64_t control_request_timeout_ns, control_idle_timeout_ns;
    /* RTT hysteresis (agent/README.md, "Leader stability"): a published RTT
     * moves only when the measured one leaves [p - w, p + w] around the
     * published p, w = max(p * pct / 100, min_ns).  Both 0: off. */
    uint32_t rtt_hyst_pct;
    uint64_t rtt_hyst_min_ns;

    uint64_t probe_interval_ns, probe_timeout_ns;
    uint32_t probe_misses;
    uint32_t flap_threshold, flap_rise;
    uint64_t flap_half_life_ns;

    char shm_name[128];
    uint32_t shm_mode;
    char shm_group[64];
    uint64_t heartbeat_ns;
    uint64_t publish_min_interval_ns;
    uint32_t rtt_change_pct;

    struct netelect_cfg_peer *peers;
    size_t n_peers, cap_peers;
    int peers_line;                 /* first [peers] entry, for cross-checks */
    struct netelect_cfg_chan *chans;
    size_t n_chans, cap_chans;

    int serf_enabled;
    char serf_rpc_addr[80];
    char serf_auth_key[128];
    char serf_id_tag[64];
    char serf_channel_tag[64];
    uint64_t serf_coord_period_ns;
    uint64_t serf_status_poll_ns; /* UINT64_MAX: off (NETELECT_SERF_STATUS_POLL_OFF) */
    /* Who may own the RPC listener (docs/serf.md, "Trust"): "" = the serf
     * (or _serf) system user if there is one; a uid; a user name; "any". */
    char serf_rpc_uid[64];
    uint32_t serf_max_nodes;        /* members holding a node id at once */
    uint32_t serf_max_chans;        /* Serf creates no channel past this many */

    /* [metrics] listen: the HTTP endpoint's address ("": off) */
    char metrics_listen[80];
    struct sockaddr_storage metrics_addr;
    socklen_t metrics_len;
};

/* Fills in the built-in defaults (also the embedded default configuration:
 * this host alone, one channel "default" whose replica is itself). */
void agent_cfg_defaults(struct netelect_cfg *c);
/* 0, or -EINVAL/-ENOENT/-ENOMEM/... with "file:line: message" in err. */
int agent_cfg_load_file(const char *path, struct netelect_cfg *out, char *err, size_t errlen);
int agent_cfg_load_buffer(const char *buf, size_t len, const char *name,
                              struct netelect_cfg *out, char *err, size_t errlen);
void agent_cfg_free(struct netelect_cfg *c);
/* Deep copy (peers, channels). 0 or -ENOMEM. */
int agent_cfg_copy(struct netelect_cfg *dst, const struct netelect_cfg *src);

/* Key file: 64 hex digits (whitespace around them ignored); must be a regular
 * file owned by root or the effective uid and not readable by group or
 * others.  0, or -errno with a message.  (The configuration file is checked
 * by agent_cfg_load_file() too: same owners, not group/world-writable,
 * and not group/world-readable if it holds [serf] auth_key.) */
int agent_key_load(const char *path, uint8_t key[NETELECT_KEY_LEN], char *err, size_t errlen);
/* 0 if st (of path) is owned by root or the effective uid, else -EPERM with
 * "<what> <path>: owned by uid N, ..." in err. */
struct stat;
int agent_file_owner_ok(const struct stat *st, const char *path, const char *what, char *err,
                            size_t errlen);
/* Creates a new key file (O_EXCL, mode 0600) from getrandom(). */
int agent_key_generate(const char *path, char *err, size_t errlen);

/* The stable default node id: the first 8 bytes (little-endian) of
 * BLAKE2b(key = "netelect node id v1", machine-id), so the machine id itself
 * is not disclosed.  Never 0.  0, or -errno if no machine id is readable. */
int agent_default_node_id(const char *machine_id_path, uint64_t *out);

/* Where the agent keeps state (a generated node id): the
 * configured directory if any; else NETELECT_DEFAULT_STATE_DIR as root, else
 * $XDG_STATE_HOME/netelect or $HOME/.local/state/netelect.  0, or -ENOENT
 * (no usable $XDG_STATE_HOME/$HOME) / -ENAMETOOLONG with a message. */
#define NETELECT_DEFAULT_STATE_DIR "/var/lib/netelect"
#define NETELECT_NODE_ID_FILE "node-id"
int agent_state_dir_default(const char *configured, char *out, size_t cap, char *err,
                                size_t errlen);

enum netelect_node_id_source {
    NETELECT_NODE_ID_MACHINE_ID, /* hashed machine id: stable across reboots and reinstalls
                                    of netelect, changes if the OS is reinstalled */
    NETELECT_NODE_ID_STATE_FILE, /* read back from <state_dir>/node-id: stable while the
                                    file is kept */
    NETELECT_NODE_ID_GENERATED,  /* random, just written to <state_dir>/node-id */
};
struct netelect_node_id_origin {
    enum netelect_node_id_source source;
    char path[PATH_MAX];         /* the machine-id file or the node-id file */
};
/* The node id when none is configured: agent_default_node_id() from
 * machine_id_path (NULL: /etc/machine-id, then /var/lib/dbus/machine-id);
 * failing that, the id in <state_dir>/node-id ("0x" + 16 hex digits, mode
 * 0600); failing that, a random non-zero id from getrandom() written there
 * atomically (a 0600 temporary created with O_EXCL, fsync'd, then link()ed
 * to its name so that a concurrent start's id is never replaced), creating
 * state_dir (0700) if needed.  state_dir NULL: no fallback.  A node-id file
 * that is not a regular file, is writable by group or others, or does not
 * hold a node id is an error, never silently replaced.  0, or -errno with a
 * message in err. */
int agent_node_id_resolve(const char *machine_id_path, const char *state_dir, uint64_t *out,
                              struct netelect_node_id_origin *origin, char *err, size_t errlen);

const char *agent_log_level_name(int level);

#endif /* AGENT_CONFIG_H */
