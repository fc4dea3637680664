// Package redisstore is the cluster store on Redis. Keys (prefix "kms:"):
//
//	kms:node:<id>     string, a node's JSON record, with the node's TTL
//	kms:route:<key>   string, the node id of a pipeline (or of a placement tag)
//	kms:sess:<sid>    hash, "p:<pipeline>" -> "" and "s:<subscription>" -> JSON, with a TTL
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/kurento-go/kms/cluster"
	"github.com/redis/go-redis/v9"
)

// Store is a cluster.Store on one Redis server.
type Store struct {
	rdb *redis.Client
}

var _ cluster.Store = (*Store)(nil)

// Open connects to redis://HOST:PORT[/DB]. It does not wait for the server: every call fails while
// it is unreachable, and works again when it is back.
func Open(url string) (*Store, error) {
	if !strings.HasPrefix(url, "redis://") {
		return nil, fmt.Errorf("cluster store %q: only redis://HOST:PORT[/DB] is supported", url)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("cluster store %q: %w", url, err)
	}
	// Fail fast when Redis is down: routers fall back on what they know, they must not hang.
	opt.DialTimeout = time.Second
	opt.ReadTimeout = time.Second
	opt.WriteTimeout = time.Second
	opt.MaxRetries = 1
	return &Store{rdb: redis.NewClient(opt)}, nil
}

func nodeKey(id string) string   { return "kms:node:" + id }
func routeKey(k string) string   { return "kms:route:" + k }
func sessionKey(s string) string { return "kms:sess:" + s }

// PublishNode implements cluster.Store.
func (s *Store) PublishNode(ctx context.Context, n cluster.NodeInfo, ttl time.Duration) error {
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	return s.rdb.Set(ctx, nodeKey(n.ID), b, ttl).Err()
}

// RemoveNode implements cluster.Store.
func (s *Store) RemoveNode(ctx context.Context, id string) error {
	return s.rdb.Del(ctx, nodeKey(id)).Err()
}

// Nodes implements cluster.Store.
func (s *Store) Nodes(ctx context.Context) ([]cluster.NodeInfo, error) {
	var keys []string
	iter := s.rdb.Scan(ctx, 0, nodeKey("*"), 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, nil
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]cluster.NodeInfo, 0, len(vals))
	for _, v := range vals {
		str, ok := v.(string) // nil: expired between SCAN and MGET
		if !ok {
			continue
		}
		var n cluster.NodeInfo
		if json.Unmarshal([]byte(str), &n) == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

func placedKey(node string) string { return "kms:placed:" + node }

// placementMemory is how long placements are kept: far longer than a node record's age.
const placementMemory = time.Minute

// AddPlacement implements cluster.Store.
func (s *Store) AddPlacement(ctx context.Context, node string, at time.Time) error {
	ms := at.UnixMilli()
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, placedKey(node), redis.Z{Score: float64(ms), Member: uuid.NewString()})
		p.ZRemRangeByScore(ctx, placedKey(node), "-inf", strconv.FormatInt(ms-placementMemory.Milliseconds(), 10))
		p.Expire(ctx, placedKey(node), placementMemory)
		return nil
	})
	return err
}

// Placements implements cluster.Store.
func (s *Store) Placements(ctx context.Context, since map[string]time.Time) (map[string]int, error) {
	cmds := map[string]*redis.IntCmd{}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for node, t := range since {
			cmds[node] = p.ZCount(ctx, placedKey(node), "("+strconv.FormatInt(t.UnixMilli(), 10), "+inf")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(cmds))
	for node, c := range cmds {
		out[node] = int(c.Val())
	}
	return out, nil
}

// SetRoute implements cluster.Store.
func (s *Store) SetRoute(ctx context.Context, key, node string) error {
	return s.rdb.Set(ctx, routeKey(key), node, 0).Err()
}

// Route implements cluster.Store.
func (s *Store) Route(ctx context.Context, key string) (string, error) {
	v, err := s.rdb.Get(ctx, routeKey(key)).Result()
	if errors.Is(err, redis.Nil) {
		return "", cluster.ErrNotFound
	}
	return v, err
}

// DeleteRoute implements cluster.Store.
func (s *Store) DeleteRoute(ctx context.Context, key string) error {
	return s.rdb.Del(ctx, routeKey(key)).Err()
}

func (s *Store) setSessionField(ctx context.Context, sid, field, value string, ttl time.Duration) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, sessionKey(sid), field, value)
		p.Expire(ctx, sessionKey(sid), ttl)
		return nil
	})
	return err
}

// AddSessionPipeline implements cluster.Store.
func (s *Store) AddSessionPipeline(ctx context.Context, sid, pipeline string, ttl time.Duration) error {
	return s.setSessionField(ctx, sid, "p:"+pipeline, "", ttl)
}

// AddSubscription implements cluster.Store.
func (s *Store) AddSubscription(ctx context.Context, sid, subID string, sub cluster.Subscription, ttl time.Duration) error {
	b, err := json.Marshal(sub)
	if err != nil {
		return err
	}
	return s.setSessionField(ctx, sid, "s:"+subID, string(b), ttl)
}

// RemoveSubscription implements cluster.Store.
func (s *Store) RemoveSubscription(ctx context.Context, sid, subID string) error {
	return s.rdb.HDel(ctx, sessionKey(sid), "s:"+subID).Err()
}

// TouchSession implements cluster.Store.
func (s *Store) TouchSession(ctx context.Context, sid string, ttl time.Duration) (bool, error) {
	return s.rdb.Expire(ctx, sessionKey(sid), ttl).Result()
}

// Session implements cluster.Store.
func (s *Store) Session(ctx context.Context, sid string) (*cluster.Session, error) {
	m, err := s.rdb.HGetAll(ctx, sessionKey(sid)).Result()
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, cluster.ErrNotFound
	}
	out := &cluster.Session{Subs: map[string]cluster.Subscription{}}
	for k, v := range m {
		switch {
		case strings.HasPrefix(k, "p:"):
			out.Pipelines = append(out.Pipelines, k[2:])
		case strings.HasPrefix(k, "s:"):
			var sub cluster.Subscription
			if json.Unmarshal([]byte(v), &sub) == nil {
				out.Subs[k[2:]] = sub
			}
		}
	}
	return out, nil
}

// DeleteSession implements cluster.Store.
func (s *Store) DeleteSession(ctx context.Context, sid string) error {
	return s.rdb.Del(ctx, sessionKey(sid)).Err()
}

// Close implements cluster.Store.
func (s *Store) Close() error { return s.rdb.Close() }
