#define GLIB_DISABLE_DEPRECATION_WARNINGS
#include "bridge.h"
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

GstElement *kb_parse(const char *desc, GError **err) {
  GstElement *e = gst_parse_launch_full(desc, NULL, GST_PARSE_FLAG_FATAL_ERRORS, err);
  if (e == NULL) return NULL;
  if (*err != NULL) {
    gst_object_unref(gst_object_ref_sink(e));
    return NULL;
  }
  return gst_object_ref_sink(e);
}

// kb_as_pipeline takes e (owned) and returns a pipeline owning it: e itself when it is one.
GstElement *kb_as_pipeline(GstElement *e) {
  if (GST_IS_PIPELINE(e)) return e;
  GstElement *p = gst_pipeline_new(NULL);
  gst_bin_add(GST_BIN(p), e); /* takes a ref */
  gst_object_unref(e);
  return gst_object_ref_sink(p);
}

int kb_is_bin(GstElement *e) { return GST_IS_BIN(e); }

GstElement *kb_get_by_name(GstElement *bin, const char *name) {
  return gst_bin_get_by_name(GST_BIN(bin), name);
}

int kb_is_appsrc(GstElement *e) { return GST_IS_APP_SRC(e); }
int kb_is_appsink(GstElement *e) { return GST_IS_APP_SINK(e); }

int kb_push(GstElement *appsrc, const void *data, gsize len, GstClockTime pts) {
  GstBuffer *b = gst_buffer_new_allocate(NULL, len, NULL);
  if (b == NULL) return GST_FLOW_ERROR;
  gst_buffer_fill(b, 0, data, len);
  GST_BUFFER_PTS(b) = pts;
  GST_BUFFER_DTS(b) = pts; /* nothing pushed here has reordered frames */
  return gst_app_src_push_buffer(GST_APP_SRC(appsrc), b); /* takes b */
}

// kb_pull returns the size of the next buffer (copying at most cap bytes into dst), or -1 when
// none came within timeout.
int kb_pull(GstElement *appsink, guint64 timeout, void *dst, int cap, guint64 *pts) {
  GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(appsink), timeout);
  if (s == NULL) return -1;
  GstBuffer *b = gst_sample_get_buffer(s);
  int n = 0;
  if (b != NULL) {
    n = (int)gst_buffer_get_size(b);
    gst_buffer_extract(b, 0, dst, n < cap ? n : cap);
    *pts = GST_BUFFER_PTS(b);
  }
  gst_sample_unref(s);
  return n;
}

int kb_appsink_eos(GstElement *appsink) { return gst_app_sink_is_eos(GST_APP_SINK(appsink)); }

// A sample or the end of stream at an appsink counts up an eventfd that the sink's goroutine waits
// on in Go's poller: between buffers it is parked, not blocked in a cgo call (which would keep the
// Go runtime's monitor thread polling every 20 µs), and no Go code runs on the streaming thread.
static void notify(gpointer user) {
  guint64 one = 1;
  ssize_t r = write(GPOINTER_TO_INT(user), &one, sizeof one);
  (void)r; // a full counter has a wake-up pending already
}
static GstFlowReturn notify_sample(GstAppSink *sink, gpointer user) {
  notify(user);
  return GST_FLOW_OK;
}
static void notify_eos(GstAppSink *sink, gpointer user) { notify(user); }

// kb_sink_notify returns the eventfd the appsink counts its samples on, or -1.
int kb_sink_notify(GstElement *appsink) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return -1;
  GstAppSinkCallbacks cb = {0};
  cb.eos = notify_eos;
  cb.new_sample = notify_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(appsink), &cb, GINT_TO_POINTER(fd), NULL);
  return fd;
}

int kb_force_key_unit(GstElement *e) {
  GstEvent *ev = gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0);
  return gst_element_send_event(e, ev);
}

// An upstream force-key-unit event reaching an appsrc becomes an application message on the bus,
// so that no Go code runs on streaming threads.
static GstPadProbeReturn key_unit_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user) {
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
  if (ev != NULL && gst_video_event_is_force_key_unit(ev)) {
    GstElement *src = GST_ELEMENT(user);
    GstStructure *st = gst_structure_new_empty("kms-force-key-unit");
    gst_element_post_message(src, gst_message_new_application(GST_OBJECT(src), st));
  }
  return GST_PAD_PROBE_OK;
}

int kb_watch_key_unit(GstElement *appsrc) {
  GstPad *pad = gst_element_get_static_pad(appsrc, "src");
  if (pad == NULL) return 0;
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, key_unit_probe, appsrc, NULL);
  gst_object_unref(pad);
  return 1;
}

int kb_set_state(GstElement *e, GstState s) { return gst_element_set_state(e, s); }

GstBus *kb_bus(GstElement *pipeline) { return gst_element_get_bus(pipeline); }

GstMessage *kb_bus_pop(GstBus *bus) {
  return gst_bus_timed_pop_filtered(bus, GST_CLOCK_TIME_NONE,
      GST_MESSAGE_ERROR | GST_MESSAGE_WARNING | GST_MESSAGE_EOS | GST_MESSAGE_ELEMENT |
      GST_MESSAGE_APPLICATION);
}

void kb_post_stop(GstElement *pipeline) {
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_bus_post(bus, gst_message_new_application(NULL, gst_structure_new_empty("kms-stop")));
  gst_object_unref(bus);
}

// kb_set_prop_string sets a property from its textual form, converted to the property's type by
// GStreamer's deserializers (numbers, booleans, enum nicks or names, flags, caps...). Returns 0 on
// success, -1 when there is no such property, -2 when the text does not convert, -3 when the
// property is not writable.
int kb_set_prop_string(GstElement *e, const char *name, const char *value, const char **type_name) {
  GParamSpec *ps = g_object_class_find_property(G_OBJECT_GET_CLASS(e), name);
  if (ps == NULL) return -1;
  *type_name = g_type_name(G_PARAM_SPEC_VALUE_TYPE(ps));
  if (!(ps->flags & G_PARAM_WRITABLE)) return -3;
  GValue v = G_VALUE_INIT;
  g_value_init(&v, G_PARAM_SPEC_VALUE_TYPE(ps));
  if (G_VALUE_HOLDS_STRING(&v)) {
    g_value_set_string(&v, value);
  } else if (!gst_value_deserialize(&v, value)) {
    g_value_unset(&v);
    return -2;
  }
  g_object_set_property(G_OBJECT(e), name, &v);
  g_value_unset(&v);
  return 0;
}

int kb_get_prop(GstElement *e, const char *name, GValue *out) {
  GParamSpec *ps = g_object_class_find_property(G_OBJECT_GET_CLASS(e), name);
  if (ps == NULL) return -1;
  g_value_init(out, G_PARAM_SPEC_VALUE_TYPE(ps));
  g_object_get_property(G_OBJECT(e), name, out);
  return 0;
}

// kb_media_kind tells what raw media a filter element takes, as KMS's filter element decides it
// for AUTODETECT: 1 audio, 2 video, 0 neither, -1 when it lacks the sink/src pads a filter needs.
int kb_media_kind(GstElement *e) {
  GstPad *sink = gst_element_get_static_pad(e, "sink");
  if (sink == NULL) sink = gst_element_get_static_pad(e, "video_sink");
  GstPad *src = gst_element_get_static_pad(e, "src");
  int kind = -1;
  if (sink != NULL && src != NULL) {
    GstCaps *audio = gst_caps_from_string("audio/x-raw");
    GstCaps *video = gst_caps_from_string("video/x-raw");
    GstCaps *sc = gst_pad_query_caps(sink, NULL);
    GstCaps *oc = gst_pad_query_caps(src, NULL);
    if (gst_caps_can_intersect(audio, sc) && gst_caps_can_intersect(audio, oc)) kind = 1;
    else if (gst_caps_can_intersect(video, sc) && gst_caps_can_intersect(video, oc)) kind = 2;
    else kind = 0;
    gst_caps_unref(audio);
    gst_caps_unref(video);
    gst_caps_unref(sc);
    gst_caps_unref(oc);
  }
  if (sink) gst_object_unref(sink);
  if (src) gst_object_unref(src);
  return kind;
}

const char *kb_msg_src_name(GstMessage *m) {
  return GST_MESSAGE_SRC(m) ? GST_OBJECT_NAME(GST_MESSAGE_SRC(m)) : "";
}

GstMessageType kb_msg_type(GstMessage *m) { return GST_MESSAGE_TYPE(m); }

const GstStructure *kb_msg_structure(GstMessage *m) { return gst_message_get_structure(m); }

void kb_msg_parse_error(GstMessage *m, const char **domain, int *code, char **message, char **debug) {
  GError *err = NULL;
  if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) gst_message_parse_error(m, &err, debug);
  else gst_message_parse_warning(m, &err, debug);
  if (err != NULL) {
    *domain = g_quark_to_string(err->domain);
    *code = err->code;
    *message = g_strdup(err->message);
    g_error_free(err);
  }
}

int kb_value_kind(const GValue *v) {
  GType t = G_VALUE_TYPE(v);
  if (t == G_TYPE_STRING) return 1;
  if (t == G_TYPE_BOOLEAN) return 2;
  if (t == G_TYPE_INT || t == G_TYPE_INT64 || t == G_TYPE_LONG) return 3;
  if (t == G_TYPE_UINT || t == G_TYPE_UINT64 || t == G_TYPE_ULONG) return 4;
  if (t == G_TYPE_DOUBLE || t == G_TYPE_FLOAT) return 5;
  if (GST_VALUE_HOLDS_LIST(v) || GST_VALUE_HOLDS_ARRAY(v) || t == G_TYPE_VALUE_ARRAY) return 6;
  if (GST_VALUE_HOLDS_STRUCTURE(v)) return 7;
  return 0;
}

int kb_link(GstElement *a, GstElement *b) { return gst_element_link(a, b); }

int kb_bin_add(GstElement *bin, GstElement *e) { return gst_bin_add(GST_BIN(bin), e); }
const char *kb_name(GstElement *e) { return GST_OBJECT_NAME(e); }


guint kb_list_size(const GValue *v) {
  if (G_VALUE_TYPE(v) == G_TYPE_VALUE_ARRAY) {
    GValueArray *a = g_value_get_boxed(v);
    return a ? a->n_values : 0;
  }
  return GST_VALUE_HOLDS_LIST(v) ? gst_value_list_get_size(v) : gst_value_array_get_size(v);
}

const GValue *kb_list_get(const GValue *v, guint i) {
  if (G_VALUE_TYPE(v) == G_TYPE_VALUE_ARRAY) return g_value_array_get_nth(g_value_get_boxed(v), i);
  return GST_VALUE_HOLDS_LIST(v) ? gst_value_list_get_value(v, i) : gst_value_array_get_value(v, i);
}


const char *kb_factory_name(GstElement *e) {
  GstElementFactory *f = gst_element_get_factory(e);
  return f ? GST_OBJECT_NAME(f) : "";
}

// kb_demote takes an element factory out of automatic selection (uridecodebin, decodebin) when the
// replacement is installed; 1 when it did.
int kb_demote(const char *name, const char *replacement) {
  GstRegistry *reg = gst_registry_get();
  GstPluginFeature *other = gst_registry_find_feature(reg, replacement, GST_TYPE_ELEMENT_FACTORY);
  if (other == NULL) return 0;
  gst_object_unref(other);
  GstPluginFeature *f = gst_registry_find_feature(reg, name, GST_TYPE_ELEMENT_FACTORY);
  if (f == NULL) return 0;
  gst_plugin_feature_set_rank(f, GST_RANK_NONE);
  gst_object_unref(f);
  return 1;
}
