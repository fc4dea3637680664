// C side of image overlays and bins: a buffer probe that blends RGBA images into packed RGB video
// frames, either at fixed places of the frame or around each face a facedetect element found.
#ifndef KMS_GST_OVERLAY_H
#define KMS_GST_OVERLAY_H

#include <gst/gst.h>

typedef struct {
  guint8 *rgba; /* w*h*4 bytes, owned (g_malloc) */
  int w, h;
  int faces;    /* 1: placed relative to each face (ROI meta "face"); 0: relative to the frame */
  double x, y, width, height;
  int keep_aspect, center;
} kb_image;

typedef struct kb_overlay kb_overlay;

GstElement *kb_parse_bin(const char *desc, GError **err);
kb_overlay *kb_overlay_new(GstElement *e);
void kb_overlay_set(kb_overlay *o, kb_image *images, int n);
void kb_overlay_free(kb_overlay *o);
guint64 kb_overlay_drawn(kb_overlay *o);
int kb_overlay_watch(kb_overlay *o, GstElement *detector);
guint64 kb_overlay_detections(kb_overlay *o);
guint8 *kb_image_alloc(int size);

#endif
