// C helpers for pipelines that play media (PlayerEndpoint, HttpPostEndpoint): state changes, seeks,
// position/duration/seeking queries, dot dumps, appsink stream watching and rtspsrc settings.
#ifndef KMS_GST_PLAYBACK_H
#define KMS_GST_PLAYBACK_H

#include <gst/gst.h>

int kbp_set_state(GstElement *pipeline, GstState s);
int kbp_query_position(GstElement *pipeline, gint64 *pos);
int kbp_query_duration(GstElement *pipeline, gint64 *dur);
int kbp_query_seeking(GstElement *pipeline, int *seekable, gint64 *start, gint64 *end);
int kbp_seek(GstElement *pipeline, gint64 pos, int accurate, int playing);
char *kbp_dot(GstElement *pipeline, guint details);
int kbp_watch_sink(GstElement *sink);
int kbp_rtsp_settings(GstElement *uridecodebin, guint latency, const char *port_range);
int kbp_appsrc_eos(GstElement *appsrc);

#endif
