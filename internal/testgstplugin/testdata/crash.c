/* A GStreamer plugin that crashes the process it runs in, for the tests of worker isolation.
 * Every element writes through a NULL pointer (SIGSEGV on a streaming thread, as a buggy plugin
 * would) after a number of buffers:
 *   crashtransform  in-place transform of raw video or audio; property "after" (buffers, default 30);
 *                   property "once" (a file path): crash only if that file does not exist, creating
 *                   it first, so that the element rebuilt in a new process with the same properties
 *                   goes on
 *   kmscrashdec     decoder of the made-up "KMSCRASH" format (files starting "KMSCRASH <after>\n"),
 *                   with a typefinder of primary rank so that decodebin/uridecodebin pick it: it
 *                   turns each input chunk into a grey 320x240 I420 frame at 30 fps
 * Built by the test itself (testgstplugin.go); nothing here is part of the server. */
#define PACKAGE "kmscrashtest"
#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>
#include <stdlib.h>
#include <string.h>

/* volatile: the compiler cannot prove the pointer NULL, so the store really happens and the
 * process dies of SIGSEGV, not of a trap instruction the optimizer would put there. */
static int *volatile crash_target = NULL;

static void
crash_now (const gchar * who, guint64 n)
{
  GST_ERROR ("%s: crashing after %" G_GUINT64_FORMAT " buffers, as asked", who, n);
  *crash_target = 1;
}

/* ---- crashtransform ---- */

typedef struct
{
  GstBaseTransform parent;
  guint after;
  gchar *once;
  guint64 seen;
} CrashTransform;

typedef struct
{
  GstBaseTransformClass parent_class;
} CrashTransformClass;

G_DEFINE_TYPE (CrashTransform, crash_transform, GST_TYPE_BASE_TRANSFORM);

enum
{
  PROP_0,
  PROP_AFTER,
  PROP_ONCE
};

#define RAW_CAPS "video/x-raw(ANY); audio/x-raw(ANY)"

static GstStaticPadTemplate ct_sink = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (RAW_CAPS));
static GstStaticPadTemplate ct_src = GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (RAW_CAPS));

static GstFlowReturn
crash_transform_ip (GstBaseTransform * trans, GstBuffer * buf)
{
  CrashTransform *self = (CrashTransform *) trans;
  if (++self->seen <= self->after)
    return GST_FLOW_OK;
  if (self->once != NULL) {
    if (g_file_test (self->once, G_FILE_TEST_EXISTS))
      return GST_FLOW_OK;
    g_file_set_contents (self->once, "crashed\n", -1, NULL);
  }
  crash_now ("crashtransform", self->after);
  return GST_FLOW_OK;
}

static void
crash_transform_set_property (GObject * obj, guint id, const GValue * v, GParamSpec * ps)
{
  CrashTransform *self = (CrashTransform *) obj;
  if (id == PROP_AFTER) {
    self->after = g_value_get_uint (v);
  } else if (id == PROP_ONCE) {
    g_free (self->once);
    self->once = g_value_dup_string (v);
  } else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (obj, id, ps);
}

static void
crash_transform_get_property (GObject * obj, guint id, GValue * v, GParamSpec * ps)
{
  if (id == PROP_AFTER)
    g_value_set_uint (v, ((CrashTransform *) obj)->after);
  else if (id == PROP_ONCE)
    g_value_set_string (v, ((CrashTransform *) obj)->once);
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (obj, id, ps);
}

static void
crash_transform_finalize (GObject * obj)
{
  g_free (((CrashTransform *) obj)->once);
  G_OBJECT_CLASS (crash_transform_parent_class)->finalize (obj);
}

static void
crash_transform_class_init (CrashTransformClass * klass)
{
  GObjectClass *oc = G_OBJECT_CLASS (klass);
  GstElementClass *ec = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *bc = GST_BASE_TRANSFORM_CLASS (klass);

  oc->set_property = crash_transform_set_property;
  oc->get_property = crash_transform_get_property;
  oc->finalize = crash_transform_finalize;
  g_object_class_install_property (oc, PROP_AFTER, g_param_spec_uint ("after", "After",
          "Buffers let through before the crash", 0, G_MAXUINT, 30,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (oc, PROP_ONCE, g_param_spec_string ("once", "Once",
          "Crash only if this file does not exist (created before the crash)", NULL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  gst_element_class_add_static_pad_template (ec, &ct_sink);
  gst_element_class_add_static_pad_template (ec, &ct_src);
  gst_element_class_set_static_metadata (ec, "Crashing transform", "Filter/Effect/Video",
      "Writes through a NULL pointer after some buffers (tests only)", "kurento-go tests");
  bc->transform_ip = crash_transform_ip;
  bc->transform_ip_on_passthrough = TRUE;
}

static void
crash_transform_init (CrashTransform * self)
{
  self->after = 30;
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), TRUE);
}

/* ---- the decoders: kmscrashdec and the avdec_h264 impostor ---- */

#define KMSCRASH_MAGIC "KMSCRASH"
#define FRAME_W 320
#define FRAME_H 240

/* CrashDec turns each input buffer into a grey frame and crashes after "after" frames. */
typedef struct
{
  GstElement parent;
  GstPad *sinkpad, *srcpad;
  gboolean read_header;         /* "after" comes from the first buffer ("KMSCRASH <after>") */
  guint after;
  guint64 frames;
  gboolean started;
} CrashDec;

typedef struct
{
  GstElementClass parent_class;
} CrashDecClass;

typedef CrashDec KmsCrashDec;
typedef CrashDecClass KmsCrashDecClass;
typedef CrashDec CrashH264Dec;
typedef CrashDecClass CrashH264DecClass;

G_DEFINE_TYPE (KmsCrashDec, kms_crash_dec, GST_TYPE_ELEMENT);
G_DEFINE_TYPE (CrashH264Dec, crash_h264_dec, GST_TYPE_ELEMENT);

static GstStaticPadTemplate kmscrash_sink = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("application/x-kmscrash"));
static GstStaticPadTemplate h264_sink = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("video/x-h264"));
static GstStaticPadTemplate raw_src = GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("video/x-raw,format=I420,width=320,height=240,framerate=30/1"));

/* start pushes the caps and a time segment: the input's (byte) segment means nothing downstream. */
static void
crash_dec_start (CrashDec * self)
{
  GstSegment seg;
  GstCaps *caps = gst_static_pad_template_get_caps (&raw_src);
  gst_pad_push_event (self->srcpad, gst_event_new_caps (caps));
  gst_caps_unref (caps);
  gst_segment_init (&seg, GST_FORMAT_TIME);
  gst_pad_push_event (self->srcpad, gst_event_new_segment (&seg));
  self->started = TRUE;
}

static GstFlowReturn
crash_dec_chain (GstPad * pad, GstObject * parent, GstBuffer * in)
{
  CrashDec *self = (CrashDec *) parent;
  GstBuffer *out;
  gsize size = FRAME_W * FRAME_H * 3 / 2;

  if (!self->started) {
    GstMapInfo map;
    if (self->read_header && gst_buffer_map (in, &map, GST_MAP_READ)) {
      if (map.size > strlen (KMSCRASH_MAGIC) + 1)
        self->after = (guint) strtoul ((const char *) map.data + strlen (KMSCRASH_MAGIC) + 1, NULL, 10);
      gst_buffer_unmap (in, &map);
    }
    crash_dec_start (self);
  }
  gst_buffer_unref (in);
  if (self->frames >= self->after)
    crash_now (GST_OBJECT_NAME (self), self->after);
  out = gst_buffer_new_allocate (NULL, size, NULL);
  gst_buffer_memset (out, 0, 0x80, size);
  GST_BUFFER_PTS (out) = gst_util_uint64_scale (self->frames, GST_SECOND, 30);
  GST_BUFFER_DURATION (out) = GST_SECOND / 30;
  self->frames++;
  return gst_pad_push (self->srcpad, out);
}

static gboolean
crash_dec_event (GstPad * pad, GstObject * parent, GstEvent * ev)
{
  switch (GST_EVENT_TYPE (ev)) {
    case GST_EVENT_CAPS:
    case GST_EVENT_SEGMENT:
      gst_event_unref (ev);     /* replaced by ours in crash_dec_start */
      return TRUE;
    default:
      return gst_pad_event_default (pad, parent, ev);
  }
}

static void
crash_dec_setup (CrashDec * self, GstStaticPadTemplate * sink, gboolean read_header)
{
  self->sinkpad = gst_pad_new_from_static_template (sink, "sink");
  gst_pad_set_chain_function (self->sinkpad, crash_dec_chain);
  gst_pad_set_event_function (self->sinkpad, crash_dec_event);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);
  self->srcpad = gst_pad_new_from_static_template (&raw_src, "src");
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
  self->read_header = read_header;
  self->after = 30;
}

static void
crash_dec_class_setup (GstElementClass * ec, GstStaticPadTemplate * sink, const char *longname)
{
  gst_element_class_add_static_pad_template (ec, sink);
  gst_element_class_add_static_pad_template (ec, &raw_src);
  gst_element_class_set_static_metadata (ec, longname, "Codec/Decoder/Video",
      "Turns its input into grey frames, then crashes (tests only)", "kurento-go tests");
}

static void
kms_crash_dec_class_init (KmsCrashDecClass * klass)
{
  crash_dec_class_setup (GST_ELEMENT_CLASS (klass), &kmscrash_sink, "KMSCRASH decoder");
}

static void
kms_crash_dec_init (KmsCrashDec * self)
{
  crash_dec_setup (self, &kmscrash_sink, TRUE);
}

static void
crash_h264_dec_class_init (CrashH264DecClass * klass)
{
  crash_dec_class_setup (GST_ELEMENT_CLASS (klass), &h264_sink, "Crashing H.264 decoder");
}

static void
crash_h264_dec_init (CrashH264Dec * self)
{
  crash_dec_setup (self, &h264_sink, FALSE);
}

static void
kmscrash_typefind (GstTypeFind * tf, gpointer unused)
{
  const guint8 *data = gst_type_find_peek (tf, 0, strlen (KMSCRASH_MAGIC));
  if (data && memcmp (data, KMSCRASH_MAGIC, strlen (KMSCRASH_MAGIC)) == 0) {
    GstCaps *caps = gst_caps_new_empty_simple ("application/x-kmscrash");
    gst_type_find_suggest (tf, GST_TYPE_FIND_MAXIMUM, caps);
    gst_caps_unref (caps);
  }
}

static gboolean
plugin_init (GstPlugin * plugin)
{
  GstCaps *caps = gst_caps_new_empty_simple ("application/x-kmscrash");
  gboolean ok = gst_element_register (plugin, "crashtransform", GST_RANK_NONE, crash_transform_get_type ())
      && gst_element_register (plugin, "kmscrashdec", GST_RANK_PRIMARY, kms_crash_dec_get_type ())
      && gst_element_register (plugin, "avdec_h264", GST_RANK_PRIMARY, crash_h264_dec_get_type ())
      && gst_type_find_register (plugin, "kmscrash", GST_RANK_PRIMARY, kmscrash_typefind, "kmscrash", caps, NULL,
      NULL);
  gst_caps_unref (caps);
  return ok;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, kmscrashtest,
    "Elements that crash the process they run in (kurento-go tests)", plugin_init, "1.0", "LGPL",
    "kurento-go", "https://github.com/kurento-go/kms")
