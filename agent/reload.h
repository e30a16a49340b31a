/* SPDX-License-Identifier: MIT */
/*
 * The running configuration: start-up, --check-config, reload, and the
 * continuity a restart inherits from the previous incarnation's view.
 */
#ifndef AGENT_RELOAD_H
#define AGENT_RELOAD_H

#include <stddef.h>
#include <sys/types.h>

#include "agent/config.h"

struct agent;

/* --check-config: loads path (and its key file) as start-up would and
 * resolves its groups; prints the verdict.  Returns the exit status (0
 * valid, 1 invalid). */
int agent_check_config(struct agent *a, const char *path);
/* Start-up: loads a->cfg_path (or the embedded default) with the command
 * line's overrides, resolves this node's id (id_origin gets how, for the
 * start-up line) and the control and segment groups, and derives the probe
 * parameters.  0, or -1 after logging why. */
int agent_config_start(struct agent *a, gid_t *shm_gid, char *id_origin, size_t id_len);
/* Makes the tables match c's peers and channels (origin CFG); nodes and
 * members added over the control socket or by Serf are left alone. */
void agent_apply_membership(struct agent *a, const struct netelect_cfg *c);
/* Re-reads the configuration file.  What cannot change without a restart
 * (node id, addresses, segment, key presence, Serf) refuses the reload:
 * then err says why, the running configuration stays and it returns
 * -EINVAL (or the load's negative errno).  0 on success. */
int agent_reload(struct agent *a, char *err, size_t errlen);
/* Seeds the configured peers from the view a previous incarnation left;
 * msg gets one line to log at *level. */
void agent_inherit_old_view(struct agent *a, char *msg, size_t msglen, int *level);

#endif /* AGENT_RELOAD_H */
