#define GLIB_DISABLE_DEPRECATION_WARNINGS
#include "overlay.h"
#include <gst/video/video.h>
#include <string.h>

GstElement *kb_parse_bin(const char *desc, GError **err) {
  GstElement *e = gst_parse_bin_from_description_full(desc, TRUE, NULL, GST_PARSE_FLAG_FATAL_ERRORS, err);
  if (e == NULL) return NULL;
  if (*err != NULL) {
    gst_object_unref(gst_object_ref_sink(e));
    return NULL;
  }
  return gst_object_ref_sink(e);
}

guint8 *kb_image_alloc(int size) { return g_malloc(size); }

#define KB_MAX_FACES 32

struct kb_overlay {
  GMutex lock;
  kb_image *images;
  int n;
  GstPad *pad;
  gulong probe;
  GstVideoInfo info;
  gboolean have_info;
  guint64 drawn; /* images drawn, for tests */
  GQuark face;
  /* Faces found by a detector elsewhere in the pipeline (kb_overlay_watch): the latest frame's,
   * in fractions of the detector's frame. */
  GstPad *det_pad;
  gulong det_probe;
  int det_w, det_h;
  double faces[KB_MAX_FACES][4];
  int nfaces;
  guint64 detections; /* frames the detector looked at, for tests */
};

static void free_images(kb_image *images, int n) {
  for (int i = 0; i < n; i++) g_free(images[i].rgba);
  g_free(images);
}

/* blend draws img scaled to w x h (bilinear, as an OpenCV resize would) with its top-left corner
 * at (x, y) of the frame, clipped to the frame, mixing by the image's alpha. */
static void blend(GstVideoFrame *f, const kb_image *img, int x, int y, int w, int h) {
  const int fw = GST_VIDEO_FRAME_WIDTH(f), fh = GST_VIDEO_FRAME_HEIGHT(f);
  if (w <= 0 || h <= 0 || x >= fw || y >= fh || x + w <= 0 || y + h <= 0) return;
  guint8 *data = GST_VIDEO_FRAME_PLANE_DATA(f, 0);
  const int stride = GST_VIDEO_FRAME_PLANE_STRIDE(f, 0);
  const int ps = GST_VIDEO_FRAME_COMP_PSTRIDE(f, 0);
  const int ro = GST_VIDEO_FRAME_COMP_POFFSET(f, GST_VIDEO_COMP_R);
  const int go = GST_VIDEO_FRAME_COMP_POFFSET(f, GST_VIDEO_COMP_G);
  const int bo = GST_VIDEO_FRAME_COMP_POFFSET(f, GST_VIDEO_COMP_B);
  const int x0 = x < 0 ? -x : 0, x1 = x + w > fw ? fw - x : w;
  const int y0 = y < 0 ? -y : 0, y1 = y + h > fh ? fh - y : h;
  /* Source coordinates in 8.8 fixed point for each destination column. */
  int *cx = g_new(int, (x1 - x0) * 3);
  for (int dx = x0; dx < x1; dx++) {
    double s = (dx + 0.5) * img->w / w - 0.5;
    if (s < 0) s = 0;
    int i = (int)s, fr = (int)((s - i) * 256);
    if (i >= img->w - 1) { i = img->w - 1; fr = 0; }
    int *c = &cx[(dx - x0) * 3];
    c[0] = i * 4;
    c[1] = (i + 1 < img->w ? i + 1 : i) * 4;
    c[2] = fr;
  }
  for (int dy = y0; dy < y1; dy++) {
    double s = (dy + 0.5) * img->h / h - 0.5;
    if (s < 0) s = 0;
    int j = (int)s, fy = (int)((s - j) * 256);
    if (j >= img->h - 1) { j = img->h - 1; fy = 0; }
    const guint8 *r0 = img->rgba + (gsize)j * img->w * 4;
    const guint8 *r1 = img->rgba + (gsize)(j + 1 < img->h ? j + 1 : j) * img->w * 4;
    guint8 *row = data + (gsize)(y + dy) * stride;
    for (int dx = x0; dx < x1; dx++) {
      const int *c = &cx[(dx - x0) * 3];
      const int fx = c[2];
      int px[4];
      for (int k = 0; k < 4; k++) {
        int top = r0[c[0] + k] * (256 - fx) + r0[c[1] + k] * fx;
        int bot = r1[c[0] + k] * (256 - fx) + r1[c[1] + k] * fx;
        px[k] = (top * (256 - fy) + bot * fy + (1 << 15)) >> 16;
      }
      const int a = px[3];
      if (a == 0) continue;
      guint8 *d = row + (gsize)(x + dx) * ps;
      if (a == 255) {
        d[ro] = px[0];
        d[go] = px[1];
        d[bo] = px[2];
      } else {
        d[ro] = (px[0] * a + d[ro] * (255 - a) + 127) / 255;
        d[go] = (px[1] * a + d[go] * (255 - a) + 127) / 255;
        d[bo] = (px[2] * a + d[bo] * (255 - a) + 127) / 255;
      }
    }
  }
  g_free(cx);
}

/* place_frame draws an image placed relative to the frame, as KMS's logo overlay does: offsets
 * and size in fractions of the frame; keepAspectRatio fits the image in that box, center centres
 * it there. */
static int place_frame(GstVideoFrame *f, const kb_image *img) {
  const int fw = GST_VIDEO_FRAME_WIDTH(f), fh = GST_VIDEO_FRAME_HEIGHT(f);
  if (img->width == 0 || img->height == 0) return 0;
  int w = (int)(fw * img->width), h = (int)(fh * img->height);
  int center = img->center;
  if (img->keep_aspect) {
    double wr = (double)w / img->w, hr = (double)h / img->h;
    if (wr < hr) h = (int)((double)w * img->h / img->w);
    else if (hr < wr) w = (int)((double)h * img->w / img->h);
  } else {
    center = 0;
  }
  int x = (int)(fw * img->x), y = (int)(fh * img->y);
  if (center) {
    int rw = (int)(fw * img->width), rh = (int)(fh * img->height);
    if (rw > w) x += (rw - w) / 2;
    if (rh > h) y += (rh - h) / 2;
  }
  blend(f, img, x, y, w, h);
  return 1;
}

/* place_face draws an image over a face as KMS's face overlay does: offsets and size in fractions
 * of the face's width and height. */
static int place_face(GstVideoFrame *f, const kb_image *img, int fx, int fy, int fw, int fh) {
  if (img->width == 0 || img->height == 0) return 0;
  int x = (int)(fx + fw * img->x), y = (int)(fy + fh * img->y);
  int w = (int)(fw * img->width), h = (int)(fh * img->height);
  blend(f, img, x, y, w, h);
  return 1;
}

static gboolean drawable(const GstVideoInfo *info) {
  const GstVideoFormatInfo *fi = info->finfo;
  return fi != NULL && GST_VIDEO_FORMAT_INFO_IS_RGB(fi) && GST_VIDEO_FORMAT_INFO_N_PLANES(fi) == 1 &&
         GST_VIDEO_FORMAT_INFO_DEPTH(fi, 0) == 8 && GST_VIDEO_FORMAT_INFO_PSTRIDE(fi, 0) >= 3;
}

static GstPadProbeReturn overlay_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user) {
  kb_overlay *o = user;
  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
    if (GST_EVENT_TYPE(ev) == GST_EVENT_CAPS) {
      GstCaps *caps;
      gst_event_parse_caps(ev, &caps);
      g_mutex_lock(&o->lock);
      o->have_info = gst_video_info_from_caps(&o->info, caps) && drawable(&o->info);
      g_mutex_unlock(&o->lock);
    }
    return GST_PAD_PROBE_OK;
  }
  g_mutex_lock(&o->lock);
  if (o->n == 0 || !o->have_info) {
    g_mutex_unlock(&o->lock);
    return GST_PAD_PROBE_OK;
  }
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  gboolean need_faces = FALSE, faces = FALSE;
  for (int i = 0; i < o->n; i++) need_faces |= o->images[i].faces;
  if (need_faces && o->det_pad != NULL) {
    faces = o->nfaces > 0;
  } else if (need_faces) {
    gpointer state = NULL;
    GstMeta *m;
    while ((m = gst_buffer_iterate_meta_filtered(buf, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) != NULL) {
      if (((GstVideoRegionOfInterestMeta *)m)->roi_type == o->face) faces = TRUE;
    }
  }
  gboolean any = faces;
  for (int i = 0; i < o->n && !any; i++) any = !o->images[i].faces;
  if (!any) {
    g_mutex_unlock(&o->lock);
    return GST_PAD_PROBE_OK;
  }
  buf = gst_buffer_make_writable(buf);
  GST_PAD_PROBE_INFO_DATA(info) = buf;
  GstVideoFrame f;
  if (!gst_video_frame_map(&f, &o->info, buf, GST_MAP_READWRITE)) {
    g_mutex_unlock(&o->lock);
    return GST_PAD_PROBE_OK;
  }
  for (int i = 0; i < o->n; i++) {
    const kb_image *img = &o->images[i];
    if (!img->faces) {
      o->drawn += place_frame(&f, img);
      continue;
    }
    if (o->det_pad != NULL) {
      const int fw = GST_VIDEO_FRAME_WIDTH(&f), fh = GST_VIDEO_FRAME_HEIGHT(&f);
      for (int k = 0; k < o->nfaces; k++) {
        const double *r = o->faces[k];
        o->drawn += place_face(&f, img, (int)(r[0] * fw), (int)(r[1] * fh), (int)(r[2] * fw), (int)(r[3] * fh));
      }
      continue;
    }
    gpointer state = NULL;
    GstMeta *m;
    while ((m = gst_buffer_iterate_meta_filtered(buf, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) != NULL) {
      GstVideoRegionOfInterestMeta *r = (GstVideoRegionOfInterestMeta *)m;
      if (r->roi_type == o->face) o->drawn += place_face(&f, img, r->x, r->y, r->w, r->h);
    }
  }
  gst_video_frame_unmap(&f);
  g_mutex_unlock(&o->lock);
  return GST_PAD_PROBE_OK;
}

kb_overlay *kb_overlay_new(GstElement *e) {
  GstPad *pad = gst_element_get_static_pad(e, "src");
  if (pad == NULL) return NULL;
  kb_overlay *o = g_new0(kb_overlay, 1);
  g_mutex_init(&o->lock);
  o->pad = pad;
  o->face = g_quark_from_static_string("face");
  o->probe = gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, overlay_probe, o, NULL);
  /* Caps may have been set before the probe was there. */
  GstCaps *caps = gst_pad_get_current_caps(pad);
  g_mutex_lock(&o->lock);
  if (caps != NULL && !o->have_info) o->have_info = gst_video_info_from_caps(&o->info, caps) && drawable(&o->info);
  g_mutex_unlock(&o->lock);
  if (caps != NULL) gst_caps_unref(caps);
  return o;
}

/* kb_overlay_set replaces the images (taking images and their pixels over). */
void kb_overlay_set(kb_overlay *o, kb_image *images, int n) {
  g_mutex_lock(&o->lock);
  kb_image *old = o->images;
  int oldn = o->n;
  o->images = images;
  o->n = n;
  g_mutex_unlock(&o->lock);
  free_images(old, oldn);
}

guint64 kb_overlay_drawn(kb_overlay *o) {
  g_mutex_lock(&o->lock);
  guint64 d = o->drawn;
  g_mutex_unlock(&o->lock);
  return d;
}

/* The detector's probe keeps the faces of the latest frame it looked at. */
static GstPadProbeReturn detector_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user) {
  kb_overlay *o = user;
  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
    if (GST_EVENT_TYPE(ev) == GST_EVENT_CAPS) {
      GstCaps *caps;
      GstVideoInfo vi;
      gst_event_parse_caps(ev, &caps);
      if (gst_video_info_from_caps(&vi, caps)) {
        g_mutex_lock(&o->lock);
        o->det_w = GST_VIDEO_INFO_WIDTH(&vi);
        o->det_h = GST_VIDEO_INFO_HEIGHT(&vi);
        g_mutex_unlock(&o->lock);
      }
    }
    return GST_PAD_PROBE_OK;
  }
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  g_mutex_lock(&o->lock);
  if (o->det_w > 0 && o->det_h > 0) {
    int n = 0;
    gpointer state = NULL;
    GstMeta *m;
    while (n < KB_MAX_FACES &&
           (m = gst_buffer_iterate_meta_filtered(buf, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) != NULL) {
      GstVideoRegionOfInterestMeta *r = (GstVideoRegionOfInterestMeta *)m;
      if (r->roi_type != o->face) continue;
      o->faces[n][0] = (double)r->x / o->det_w;
      o->faces[n][1] = (double)r->y / o->det_h;
      o->faces[n][2] = (double)r->w / o->det_w;
      o->faces[n][3] = (double)r->h / o->det_h;
      n++;
    }
    o->nfaces = n;
    o->detections++;
  }
  g_mutex_unlock(&o->lock);
  return GST_PAD_PROBE_OK;
}

/* kb_overlay_watch makes face images follow the faces a detector element (e.g. facedetect on a
 * downscaled copy of the video) found in the latest frame it looked at, instead of the faces
 * attached to each drawn frame. */
int kb_overlay_watch(kb_overlay *o, GstElement *detector) {
  GstPad *pad = gst_element_get_static_pad(detector, "src");
  if (pad == NULL) return 0;
  g_mutex_lock(&o->lock);
  gboolean had = o->det_pad != NULL;
  if (!had) o->det_pad = pad;
  g_mutex_unlock(&o->lock);
  if (had) {
    gst_object_unref(pad);
    return 0;
  }
  o->det_probe = gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, detector_probe, o, NULL);
  GstCaps *caps = gst_pad_get_current_caps(pad);
  GstVideoInfo vi;
  if (caps != NULL) {
    if (gst_video_info_from_caps(&vi, caps)) {
      g_mutex_lock(&o->lock);
      if (o->det_w == 0) {
        o->det_w = GST_VIDEO_INFO_WIDTH(&vi);
        o->det_h = GST_VIDEO_INFO_HEIGHT(&vi);
      }
      g_mutex_unlock(&o->lock);
    }
    gst_caps_unref(caps);
  }
  return 1;
}

guint64 kb_overlay_detections(kb_overlay *o) {
  g_mutex_lock(&o->lock);
  guint64 d = o->detections;
  g_mutex_unlock(&o->lock);
  return d;
}

/* kb_overlay_free removes the probes and frees everything; the pipeline must be stopped. */
void kb_overlay_free(kb_overlay *o) {
  if (o->det_pad != NULL) {
    gst_pad_remove_probe(o->det_pad, o->det_probe);
    gst_object_unref(o->det_pad);
  }
  gst_pad_remove_probe(o->pad, o->probe);
  gst_object_unref(o->pad);
  free_images(o->images, o->n);
  g_mutex_clear(&o->lock);
  g_free(o);
}
