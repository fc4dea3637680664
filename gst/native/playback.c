#include "playback.h"
#include <gst/app/gstappsrc.h>

int kbp_set_state(GstElement *pipeline, GstState s) { return gst_element_set_state(pipeline, s); }

int kbp_query_position(GstElement *pipeline, gint64 *pos) {
  return gst_element_query_position(pipeline, GST_FORMAT_TIME, pos);
}

int kbp_query_duration(GstElement *pipeline, gint64 *dur) {
  return gst_element_query_duration(pipeline, GST_FORMAT_TIME, dur);
}

int kbp_query_seeking(GstElement *pipeline, int *seekable, gint64 *start, gint64 *end) {
  GstQuery *q = gst_query_new_seeking(GST_FORMAT_TIME);
  int ok = gst_element_query(pipeline, q);
  if (ok) {
    gboolean s = FALSE;
    gst_query_parse_seeking(q, NULL, &s, start, end);
    *seekable = s;
  }
  gst_query_unref(q);
  return ok;
}

// kbp_seek makes a flushing seek to pos (ns). The pipeline is paused around it and its start time
// reset, so that once PLAYING again (when playing is set) the sinks pace the new segment from now:
// sinks that do not go async (async=false) would otherwise see every buffer of the new segment as
// late and render it at once.
int kbp_seek(GstElement *pipeline, gint64 pos, int accurate, int playing) {
  GstSeekFlags flags = GST_SEEK_FLAG_FLUSH | (accurate ? GST_SEEK_FLAG_ACCURATE : GST_SEEK_FLAG_KEY_UNIT);
  if (playing) gst_element_set_state(pipeline, GST_STATE_PAUSED);
  int ok = gst_element_seek(pipeline, 1.0, GST_FORMAT_TIME, flags, GST_SEEK_TYPE_SET, pos,
      GST_SEEK_TYPE_NONE, GST_CLOCK_TIME_NONE);
  gst_element_set_start_time(pipeline, 0);
  if (playing) gst_element_set_state(pipeline, GST_STATE_PLAYING);
  return ok;
}

char *kbp_dot(GstElement *pipeline, guint details) {
  return gst_debug_bin_to_dot_data(GST_BIN(pipeline), (GstDebugGraphDetails)details);
}

// Stream events reaching a watched sink become element messages posted by the sink, so that no Go
// code runs on streaming threads: "kms-sink-caps" (field caps, the caps as text) and "kms-sink-eos".
static GstPadProbeReturn sink_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user) {
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
  GstElement *sink = GST_ELEMENT(user);
  if (ev == NULL) return GST_PAD_PROBE_OK;
  switch (GST_EVENT_TYPE(ev)) {
  case GST_EVENT_CAPS: {
    GstCaps *caps = NULL;
    gst_event_parse_caps(ev, &caps);
    gchar *s = caps ? gst_caps_to_string(caps) : g_strdup("");
    GstStructure *st = gst_structure_new("kms-sink-caps", "caps", G_TYPE_STRING, s, NULL);
    g_free(s);
    gst_element_post_message(sink, gst_message_new_element(GST_OBJECT(sink), st));
    break;
  }
  case GST_EVENT_EOS:
    gst_element_post_message(sink, gst_message_new_element(GST_OBJECT(sink), gst_structure_new_empty("kms-sink-eos")));
    break;
  default:
    break;
  }
  return GST_PAD_PROBE_OK;
}

int kbp_watch_sink(GstElement *sink) {
  GstPad *pad = gst_element_get_static_pad(sink, "sink");
  if (pad == NULL) return 0;
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, sink_probe, sink, NULL);
  gst_object_unref(pad);
  return 1;
}

typedef struct {
  guint latency;
  gchar *port_range;
} RtspSettings;

static void rtsp_settings_free(gpointer data, GClosure *closure) {
  RtspSettings *s = data;
  g_free(s->port_range);
  g_free(s);
}

static void source_setup(GstElement *dec, GstElement *source, gpointer data) {
  RtspSettings *s = data;
  GstElementFactory *f = gst_element_get_factory(source);
  if (f == NULL || g_strcmp0(GST_OBJECT_NAME(f), "rtspsrc") != 0) return;
  g_object_set(source, "latency", s->latency, "drop-on-latency", TRUE, NULL);
  if (s->port_range != NULL && s->port_range[0] != '\0') g_object_set(source, "port-range", s->port_range, NULL);
}

// kbp_rtsp_settings applies latency (ms), drop-on-latency and a client port range to the rtspsrc
// that a uridecodebin creates for rtsp:// URIs.
int kbp_rtsp_settings(GstElement *uridecodebin, guint latency, const char *port_range) {
  if (g_signal_lookup("source-setup", G_OBJECT_TYPE(uridecodebin)) == 0) return 0;
  RtspSettings *s = g_new0(RtspSettings, 1);
  s->latency = latency;
  s->port_range = g_strdup(port_range);
  g_signal_connect_data(uridecodebin, "source-setup", G_CALLBACK(source_setup), s, rtsp_settings_free, 0);
  return 1;
}

int kbp_appsrc_eos(GstElement *appsrc) { return gst_app_src_end_of_stream(GST_APP_SRC(appsrc)) == GST_FLOW_OK; }
