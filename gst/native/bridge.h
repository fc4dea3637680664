// C helpers of the gst bridge: the calls on the packet path (push, pull) and the few places where
// go-gst v1.4.0 either allocates per call or loses GStreamer's error details.
#ifndef KMS_GST_BRIDGE_H
#define KMS_GST_BRIDGE_H

#include <gst/gst.h>
#include <gst/app/gstappsrc.h>
#include <gst/app/gstappsink.h>
#include <gst/video/video.h>

GstElement *kb_parse(const char *desc, GError **err);
GstElement *kb_as_pipeline(GstElement *e);
int kb_is_bin(GstElement *e);
GstElement *kb_get_by_name(GstElement *bin, const char *name);
int kb_is_appsrc(GstElement *e);
int kb_is_appsink(GstElement *e);
int kb_push(GstElement *appsrc, const void *data, gsize len, GstClockTime pts);
int kb_pull(GstElement *appsink, guint64 timeout, void *dst, int cap, guint64 *pts);
int kb_appsink_eos(GstElement *appsink);
int kb_sink_notify(GstElement *appsink);
int kb_force_key_unit(GstElement *e);
int kb_watch_key_unit(GstElement *appsrc);
int kb_set_state(GstElement *e, GstState s);
GstBus *kb_bus(GstElement *pipeline);
GstMessage *kb_bus_pop(GstBus *bus);
void kb_post_stop(GstElement *pipeline);
int kb_set_prop_string(GstElement *e, const char *name, const char *value, const char **type_name);
int kb_get_prop(GstElement *e, const char *name, GValue *out);
int kb_media_kind(GstElement *e);
const char *kb_msg_src_name(GstMessage *m);
GstMessageType kb_msg_type(GstMessage *m);
const GstStructure *kb_msg_structure(GstMessage *m);
void kb_msg_parse_error(GstMessage *m, const char **domain, int *code, char **message, char **debug);
int kb_value_kind(const GValue *v);
int kb_link(GstElement *a, GstElement *b);
int kb_bin_add(GstElement *bin, GstElement *e);
const char *kb_name(GstElement *e);
const char *kb_factory_name(GstElement *e);
guint kb_list_size(const GValue *v);
const GValue *kb_list_get(const GValue *v, guint i);

int kb_demote(const char *name, const char *replacement);

#endif
