#include "wire.h"
#include <gst/app/gstappsrc.h>
#include <gst/app/gstappsink.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void put_header(guint8 *h, int kind, int flags, guint32 handle, gint64 pts) {
  memset(h, 0, KB_WIRE_HEADER);
  h[0] = kind;
  h[1] = flags;
  for (int i = 0; i < 4; i++) h[4 + i] = handle >> (8 * i);
  for (int i = 0; i < 8; i++) h[8 + i] = (guint64)pts >> (8 * i);
}

// --- appsink → socket

struct kb_wire_sink {
  int fd;
  guint32 handle;
  gsize max_buffer;
  gint closing;
};

// A datagram of whole buffers joined by KB_WIRE_NEXT, gathered from their mapped memory: a buffer
// list (a payloader's packets of one frame) goes in one datagram, so the server's reader wakes once
// per frame, not once per packet.
#define BATCH_MAX 32

typedef struct {
  guint8 hdr[BATCH_MAX][KB_WIRE_HEADER];
  struct iovec iov[2 * BATCH_MAX];
  GstBuffer *buf[BATCH_MAX];
  GstMapInfo map[BATCH_MAX];
  int n;
  gsize bytes;
} batch;

// send_frame writes one datagram, waiting for room as a blocking write would, but giving up once the
// pipeline closes (a server that stopped reading must not hold its streaming threads forever).
static int send_frame(kb_wire_sink *l, struct iovec *iov, int iovlen) {
  struct msghdr m = {0};
  m.msg_iov = iov;
  m.msg_iovlen = iovlen;
  for (;;) {
    if (sendmsg(l->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) return 0;
    if (errno == EINTR) continue;
    if ((errno != EAGAIN && errno != EWOULDBLOCK) || g_atomic_int_get(&l->closing)) return -1;
    struct pollfd p = {l->fd, POLLOUT, 0};
    poll(&p, 1, 100);
  }
}

static int batch_flush(kb_wire_sink *l, batch *b) {
  if (b->n == 0) return 0;
  for (int i = 0; i < b->n - 1; i++) { // a frame that another follows says its length
    b->hdr[i][1] |= KB_WIRE_NEXT;
    b->hdr[i][2] = b->map[i].size;
    b->hdr[i][3] = b->map[i].size >> 8;
  }
  int err = send_frame(l, b->iov, 2 * b->n);
  for (int i = 0; i < b->n; i++) gst_buffer_unmap(b->buf[i], &b->map[i]);
  b->n = 0;
  b->bytes = 0;
  return err;
}

// send_big sends a buffer too big for a datagram in fragments, as workerproto.Fragments cuts them.
static int send_big(kb_wire_sink *l, const guint8 *data, gsize left, gint64 pts) {
  guint8 hdr[KB_WIRE_HEADER];
  int flags = KB_WIRE_FIRST;
  for (;;) {
    gsize n = MIN(left, KB_WIRE_MAX_PACKET - KB_WIRE_HEADER);
    if (n == left) flags |= KB_WIRE_LAST;
    put_header(hdr, KB_WIRE_SINK, flags, l->handle, pts);
    struct iovec iov[2] = {{hdr, KB_WIRE_HEADER}, {(void *)data, n}};
    if (send_frame(l, iov, 2) != 0) return -1;
    if (n == left) return 0;
    data += n;
    left -= n;
    flags = 0;
  }
}

// batch_add sends b (mapped until then) in the batch, or alone when too big for a datagram.
static int batch_add(kb_wire_sink *l, batch *bt, GstBuffer *b) {
  GstMapInfo mi;
  if (!gst_buffer_map(b, &mi, GST_MAP_READ)) return 0;
  if (mi.size > l->max_buffer) {
    gst_buffer_unmap(b, &mi);
    return 0;
  }
  gint64 pts = GST_BUFFER_PTS_IS_VALID(b) ? (gint64)GST_BUFFER_PTS(b) : -1;
  if (mi.size > KB_WIRE_MAX_PACKET - KB_WIRE_HEADER) {
    int err = batch_flush(l, bt);
    if (err == 0) err = send_big(l, mi.data, mi.size, pts);
    gst_buffer_unmap(b, &mi);
    return err;
  }
  if (bt->n == BATCH_MAX || bt->bytes + KB_WIRE_HEADER + mi.size > KB_WIRE_MAX_PACKET) {
    if (batch_flush(l, bt) != 0) {
      gst_buffer_unmap(b, &mi);
      return -1;
    }
  }
  int i = bt->n++;
  put_header(bt->hdr[i], KB_WIRE_SINK, KB_WIRE_FIRST | KB_WIRE_LAST, l->handle, pts);
  bt->iov[2 * i] = (struct iovec){bt->hdr[i], KB_WIRE_HEADER};
  bt->iov[2 * i + 1] = (struct iovec){mi.data, mi.size};
  bt->buf[i] = b;
  bt->map[i] = mi;
  bt->bytes += KB_WIRE_HEADER + mi.size;
  return 0;
}

static GstFlowReturn on_sample(GstAppSink *sink, gpointer user) {
  kb_wire_sink *l = user;
  GstSample *s = gst_app_sink_try_pull_sample(sink, 0);
  if (s == NULL) return GST_FLOW_OK;
  batch bs, *bt = &bs; // ≈ 5 KB of stack on the streaming thread
  bt->n = 0;
  bt->bytes = 0;
  GstBufferList *list = gst_sample_get_buffer_list(s);
  GstBuffer *b = gst_sample_get_buffer(s);
  int err = 0;
  if (list != NULL) {
    for (guint i = 0, n = gst_buffer_list_length(list); i < n && err == 0; i++)
      err = batch_add(l, bt, gst_buffer_list_get(list, i));
  } else if (b != NULL) {
    err = batch_add(l, bt, b);
  }
  if (err == 0) batch_flush(l, bt);
  else for (int i = 0; i < bt->n; i++) gst_buffer_unmap(bt->buf[i], &bt->map[i]);
  gst_sample_unref(s);
  return GST_FLOW_OK;
}

// Every sample was sent from on_sample when the end of stream reaches the sink.
static void on_eos(GstAppSink *sink, gpointer user) {
  kb_wire_sink *l = user;
  if (g_atomic_int_get(&l->closing)) return;
  guint8 hdr[KB_WIRE_HEADER];
  put_header(hdr, KB_WIRE_SINK_END, 0, l->handle, 0);
  struct iovec iov = {hdr, KB_WIRE_HEADER};
  send_frame(l, &iov, 1);
}

// kb_wire_sink_attach sends every buffer of appsink to fd; the link lives as long as the appsink.
kb_wire_sink *kb_wire_sink_attach(GstElement *appsink, int fd, guint32 handle, gsize max_buffer) {
  kb_wire_sink *l = g_new0(kb_wire_sink, 1);
  l->fd = fd;
  l->handle = handle;
  l->max_buffer = max_buffer;
  gboolean sync = FALSE;
  g_object_get(appsink, "sync", &sync, NULL);
  // A payloader's packets of a frame, together; not where the sink paces each buffer on the clock (a
  // list is synchronised on its first buffer).
  if (!sync) g_object_set(appsink, "buffer-list", TRUE, NULL);
  GstAppSinkCallbacks cb = {0};
  cb.eos = on_eos;
  cb.new_sample = on_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(appsink), &cb, l, g_free);
  return l;
}

// kb_wire_sink_close makes a send waiting for room give up (before the pipeline stops).
void kb_wire_sink_close(kb_wire_sink *l) { g_atomic_int_set(&l->closing, 1); }

// --- stream socket → appsrc
//
// Each appsrc has a socket of its own (the server passes it over the media socket, KB_WIRE_SOCKET)
// that the appsrc's streaming thread reads itself when its queue runs empty (need-data): a frame
// costs the worker one wake-up of the thread that depayloads it, not a reader thread's wake-up and
// then a hand-off to the streaming thread.

typedef struct {
  gint refs;
  int fd;
  gint closed;     // the socket was shut down or reached its end: nothing more comes
  guint8 *buf;     // one datagram
  GByteArray *partial; // a fragmented buffer being put back together
  gboolean active;
} src_entry;

static GMutex srcs_mu;
static GCond fds_cond;
static GHashTable *srcs;    // handle → src_entry
static GHashTable *pending; // handle → socket received and not yet claimed (fd + 1)
static gsize reader_max;

// How long a read waits before looking whether the appsrc is flushing (a state change by other
// means than kb_wire_src_remove, which wakes the read at once).
#define READ_CHECK_US (250 * 1000)
// How long kb_wire_src_add waits for the socket the server sends before asking for the appsrc.
#define SOCKET_WAIT_US (5 * G_USEC_PER_SEC)

static void entry_unref(gpointer p) {
  src_entry *e = p;
  if (!g_atomic_int_dec_and_test(&e->refs)) return;
  close(e->fd);
  g_byte_array_unref(e->partial);
  g_free(e->buf);
  g_free(e);
}

static gboolean push(GstElement *appsrc, const guint8 *data, gsize n, gint64 pts) {
  GstBuffer *b = gst_buffer_new_allocate(NULL, n, NULL);
  if (b == NULL) return FALSE;
  gst_buffer_fill(b, 0, data, n);
  GST_BUFFER_PTS(b) = GST_BUFFER_DTS(b) = pts < 0 ? GST_CLOCK_TIME_NONE : (GstClockTime)pts;
  gst_app_src_push_buffer(GST_APP_SRC(appsrc), b); /* takes b */
  return TRUE;
}

// deliver hands one frame to the appsrc; TRUE once something reached it (a buffer or the end).
static gboolean deliver(src_entry *e, GstElement *appsrc, const guint8 *h, const guint8 *payload, gsize n) {
  int kind = h[0], flags = h[1] & (KB_WIRE_FIRST | KB_WIRE_LAST);
  gint64 pts = 0;
  for (int i = 0; i < 8; i++) pts |= (gint64)h[8 + i] << (8 * i);
  if (kind == KB_WIRE_EOS) {
    gst_app_src_end_of_stream(GST_APP_SRC(appsrc));
    return TRUE;
  }
  if (kind != KB_WIRE_PUSH) return FALSE;
  if (flags == (KB_WIRE_FIRST | KB_WIRE_LAST)) {
    e->active = FALSE;
    return push(appsrc, payload, n, pts);
  }
  if (flags & KB_WIRE_FIRST) {
    g_byte_array_set_size(e->partial, 0);
    e->active = TRUE;
  } else if (!e->active) {
    return FALSE;
  }
  if (e->partial->len + n > reader_max) { // bigger than any buffer kept: dropped
    e->active = FALSE;
    return FALSE;
  }
  g_byte_array_append(e->partial, payload, n);
  if (!(flags & KB_WIRE_LAST)) return FALSE;
  e->active = FALSE;
  return push(appsrc, e->partial->data, e->partial->len, pts);
}

// deliver_datagram hands a datagram's frames (one, or a video frame's packets joined by
// KB_WIRE_NEXT: AppSrc.PushPartAt) to the appsrc.
static gboolean deliver_datagram(src_entry *e, GstElement *appsrc, const guint8 *buf, gsize n) {
  gboolean pushed = FALSE;
  for (const guint8 *h = buf, *end = buf + n; end - h >= KB_WIRE_HEADER;) {
    gsize len = end - h - KB_WIRE_HEADER;
    if (h[1] & KB_WIRE_NEXT) {
      gsize next = h[2] | h[3] << 8;
      if (next > len) break;
      len = next;
    }
    pushed |= deliver(e, appsrc, h, h + KB_WIRE_HEADER, len);
    h += KB_WIRE_HEADER + len;
  }
  return pushed;
}

// on_need_data runs on the appsrc's streaming thread when its queue is empty: it reads the stream's
// socket until something reached the appsrc (appsrc then waits for a push, so returning with
// nothing would stall it), the appsrc flushes, or the socket ends.
static void on_need_data(GstAppSrc *src, guint length, gpointer user) {
  src_entry *e = user;
  while (!g_atomic_int_get(&e->closed)) {
    ssize_t n = recv(e->fd, e->buf, KB_WIRE_MAX_PACKET, 0);
    if (n > 0) {
      if (deliver_datagram(e, GST_ELEMENT(src), e->buf, n)) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      GstPad *pad = gst_element_get_static_pad(GST_ELEMENT(src), "src");
      gboolean flushing = GST_PAD_IS_FLUSHING(pad);
      gst_object_unref(pad);
      if (flushing) return;
      continue;
    }
    g_atomic_int_set(&e->closed, 1); // the server closed the stream (or the pipeline is closing)
  }
}

// kb_wire_src_add makes the frames on handle's socket go to appsrc; 0 if the socket never came.
int kb_wire_src_add(guint32 handle, GstElement *appsrc) {
  gint64 deadline = g_get_monotonic_time() + SOCKET_WAIT_US;
  int fd = -1;
  g_mutex_lock(&srcs_mu);
  for (;;) {
    gpointer v;
    if (g_hash_table_steal_extended(pending, GUINT_TO_POINTER(handle), NULL, &v)) {
      fd = GPOINTER_TO_INT(v) - 1;
      break;
    }
    if (!g_cond_wait_until(&fds_cond, &srcs_mu, deadline)) break;
  }
  g_mutex_unlock(&srcs_mu);
  if (fd < 0) return 0;
  struct timeval tv = {0, READ_CHECK_US};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  src_entry *e = g_new0(src_entry, 1);
  e->refs = 2; // the table's and the appsrc callbacks' (the entry holds no reference to the appsrc)
  e->fd = fd;
  e->buf = g_malloc(KB_WIRE_MAX_PACKET);
  e->partial = g_byte_array_new();
  g_mutex_lock(&srcs_mu);
  g_hash_table_replace(srcs, GUINT_TO_POINTER(handle), e);
  g_mutex_unlock(&srcs_mu);
  GstAppSrcCallbacks cb = {0};
  cb.need_data = on_need_data;
  gst_app_src_set_callbacks(GST_APP_SRC(appsrc), &cb, e, entry_unref);
  return 1;
}

// kb_wire_src_remove stops reading handle's socket (a read waiting on it returns at once), before
// its pipeline stops.
void kb_wire_src_remove(guint32 handle) {
  g_mutex_lock(&srcs_mu);
  src_entry *e = g_hash_table_lookup(srcs, GUINT_TO_POINTER(handle));
  if (e != NULL) {
    g_atomic_int_set(&e->closed, 1);
    shutdown(e->fd, SHUT_RDWR);
    g_hash_table_remove(srcs, GUINT_TO_POINTER(handle));
  }
  g_hash_table_remove(pending, GUINT_TO_POINTER(handle));
  g_mutex_unlock(&srcs_mu);
}

static void close_pending(gpointer v) { close(GPOINTER_TO_INT(v) - 1); }

// receive_socket keeps a stream's socket until kb_wire_src_add claims it.
static void receive_socket(const guint8 *h, int fd) {
  guint32 handle = h[4] | h[5] << 8 | h[6] << 16 | (guint32)h[7] << 24;
  g_mutex_lock(&srcs_mu);
  g_hash_table_replace(pending, GUINT_TO_POINTER(handle), GINT_TO_POINTER(fd + 1));
  g_cond_broadcast(&fds_cond);
  g_mutex_unlock(&srcs_mu);
}

// read_loop receives the streams' sockets on the media socket until the server closes it.
static gpointer read_loop(gpointer user) {
  int fd = GPOINTER_TO_INT(user);
  guint8 buf[KB_WIRE_HEADER];
  union {
    struct cmsghdr align;
    char space[CMSG_SPACE(sizeof(int))];
  } ctl;
  for (;;) {
    struct iovec iov = {buf, sizeof buf};
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.space;
    m.msg_controllen = sizeof ctl.space;
    ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd p = {fd, POLLIN, 0};
      poll(&p, 1, -1);
      continue;
    }
    if (n <= 0) _exit(0); // the server is gone: nothing is left to serve
    int got = -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (c != NULL && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
      memcpy(&got, CMSG_DATA(c), sizeof(int));
    if (got < 0) continue;
    if (n == KB_WIRE_HEADER && buf[0] == KB_WIRE_SOCKET)
      receive_socket(buf, got);
    else
      close(got);
  }
  return NULL;
}

// kb_wire_reader_start reads fd on a thread of its own until the server closes it, which ends the
// process (as the control socket's end does).
int kb_wire_reader_start(int fd, gsize max_buffer) {
  srcs = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, entry_unref);
  pending = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, close_pending);
  reader_max = max_buffer;
  GThread *t = g_thread_try_new("kms-wire-in", read_loop, GINT_TO_POINTER(fd), NULL);
  if (t == NULL) return 0;
  g_thread_unref(t);
  return 1;
}
