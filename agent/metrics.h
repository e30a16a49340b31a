/* SPDX-License-Identifier: MIT */
/*
 * Prometheus metrics.
 *
 * One source of truth: the agent's `stats` control reply.  The text
 * exposition is rendered from that JSON object by agent_metrics_render()
 * (metrics_text.c, in the agent core), both by `netelect stats
 * --format=prometheus` (from the reply it fetched over the control socket)
 * and by netelectd's optional HTTP endpoint (from the reply it builds for
 * itself), so the two can never disagree on a name or a value.
 *
 * The agent side (metrics.c, netelectd only) keeps what `stats` did not
 * have before: the publish histograms, each channel's leader and its
 * changes, the HTTP server's counters.
 */
#ifndef AGENT_METRICS_H
#define AGENT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * Renders a stats reply (as the agent sends it, peers of every page merged)
 * in the Prometheus text exposition format 0.0.4, which node_exporter's
 * textfile collector and every Prometheus server read.  A field missing
 * from the reply (an older agent) leaves its series out.  *out is
 * malloc()ed and NUL-terminated; 0, or -ENOMEM.
 */
int agent_metrics_render(json_t *stats, char **out, size_t *len);

/* The rendering for an agent that could not be asked: netelect_up 0 only. */
#define NETELECT_METRICS_DOWN                                                                  \
    "# HELP netelect_up Whether the agent answered the scrape (1) or not (0).\n"              \
    "# TYPE netelect_up gauge\n"                                                               \
    "netelect_up 0\n"

/* The Content-Type of the text format. */
#define NETELECT_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Publish histogram buckets (upper bounds, ns): 10 us .. 2.5 s. */
#define NETELECT_METRICS_BUCKETS 13

#ifdef AGENT_AGENT_H
/* ---- netelectd only (metrics.c) ---------------------------------------------------- */

/* Starts the HTTP endpoint if [metrics] listen is set (nothing otherwise):
 * 0, or -errno after logging why. */
int agent_metrics_open(struct agent *a);
void agent_metrics_close(struct agent *a);
/* The endpoint's epoll fd or its timer fired. */
void agent_metrics_event(struct agent *a);
/* After every successful publish: how long it took (view built and
 * written), the detection-to-segment delay (UINT64_MAX: nothing marked),
 * and each channel's leader as this node now sees it.  For a delta, changed
 * lists the ids of the nodes it carried (n_changed of them; ids of nodes
 * since removed may be among them); after a full publish, neither is read. */
void agent_metrics_published(struct agent *a, uint64_t duration_ns, uint64_t delay_ns, bool delta,
                             const uint64_t *changed, size_t n_changed);
/* Adds the fields above to a stats reply (its first page only: they are
 * global, and a later page carries peers alone). */
void agent_metrics_stats(const struct agent *a, json_t *r);
/* How many peers the first stats page may list beside every channel's
 * leader, within the control socket's 1 MiB reply (limit: the request's;
 * SIZE_MAX, unpaged, stays so). */
size_t agent_metrics_first_page(const struct agent *a, size_t limit);
/* control.c: the whole stats reply (every peer, no paging). */
json_t *agent_control_stats(struct agent *a);
#endif

#endif /* AGENT_METRICS_H */
