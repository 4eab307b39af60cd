package server

import (
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/schedule"
)

// Metrics are the server's Prometheus metrics, served at /metrics.
type Metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	batchSize  prometheus.Histogram
	commitTime prometheus.Histogram
	records    prometheus.Counter
	commitErrs prometheus.Counter
	tampered   prometheus.Counter
	witnessUp  *prometheus.GaugeVec
	witnessErr *prometheus.CounterVec
	refused    *prometheus.CounterVec
	scans      *prometheus.CounterVec
	scanLatest *prometheus.GaugeVec
	scanTime   *prometheus.GaugeVec
	scanMissed *prometheus.GaugeVec
	cache      sync.Map // observerKey → observers
}

// NewMetrics registers Koekje's metrics and the Go runtime's.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koekje_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "koekje_http_request_duration_seconds", Help: "Time to answer an HTTP request, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"route"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "koekje_store_batch_records", Help: "Records per group-commit batch.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "koekje_store_commit_duration_seconds", Help: "Time to write and fsync one batch.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, 1},
		}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koekje_store_records_written_total", Help: "Consent records committed.",
		}),
		commitErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koekje_store_commit_errors_total", Help: "Batches that failed to commit (nothing of them was written).",
		}),
		tampered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koekje_receipts_refused_tampered_total",
			Help: "Receipts refused because the record no longer matched its stored hash or its leaf in the signed log.",
		}),
		witnessUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "koekje_witness_up",
			Help: "1 while the witness cosigned the last checkpoint sent to it, 0 after it refused, did not answer or answered no valid cosignature.",
		}, []string{"witness"}),
		witnessErr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koekje_witness_failures_total",
			Help: "Requests to a witness that brought no valid cosignature: refusals, silences and bad answers.",
		}, []string{"witness"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koekje_consents_refused_origin_total",
			Help: "Choices refused because the browser's origin is not one of the site's origins, by site.",
		}, []string{"site"}),
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koekje_scheduled_scans_total",
			Help: "Scheduled scans this instance ran and recorded, by site and verdict (clean, fail, inconclusive).",
		}, []string{"site", "verdict"}),
		scanLatest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "koekje_scan_latest",
			Help: "1 for the verdict of the site's latest scheduled scan on record (clean, fail, inconclusive), 0 for the others.",
		}, []string{"site", "verdict"}),
		scanTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "koekje_scan_latest_timestamp_seconds",
			Help: "When the site's latest scheduled scan on record started, in Unix seconds.",
		}, []string{"site"}),
		scanMissed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "koekje_scan_missing_slots",
			Help: "Slots of the site's scan schedule in the last 30 days that ended (or are an hour overdue) without a scheduled scan.",
		}, []string{"site"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.batchSize, m.commitTime, m.records, m.commitErrs, m.tampered, m.witnessUp, m.witnessErr, m.refused,
		m.scans, m.scanLatest, m.scanTime, m.scanMissed,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// CountRetries publishes f, the store's count of batches retried because
// another instance moved a chain's head first (PostgreSQL, with several
// instances), as koekje_store_batch_retries_total.
func (m *Metrics) CountRetries(f func() int64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "koekje_store_batch_retries_total",
		Help: "Batches written again because another instance moved a chain's head first.",
	}, func() float64 { return float64(f()) }))
}

// CountLog publishes the store's counts of records this instance gave
// their leaves in the transparency log and of its integration passes that
// another instance beat to the log (PostgreSQL), as
// koekje_log_integrated_records_total and koekje_log_integration_races_total.
func (m *Metrics) CountLog(integrated, races, refused func() int64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "koekje_log_integrated_records_total",
		Help: "Records this instance took into the transparency log as its elected integrator.",
	}, func() float64 { return float64(integrated()) }), prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "koekje_log_integration_races_total",
		Help: "Integration passes that wrote nothing because another instance moved the log first.",
	}, func() float64 { return float64(races()) }), prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "koekje_log_refused_records_total",
		Help: "Records queued for the transparency log without the write path's MAC, given no leaf: written behind the server's back.",
	}, func() float64 { return float64(refused()) }))
}

// LogHeld publishes held, whether the transparency log signs nothing now
// because its tree does not extend what this server signed before (records
// are kept and wait for the log), as koekje_log_held: 1 while it holds.
func (m *Metrics) LogHeld(held func() bool) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "koekje_log_held",
		Help: "1 while the transparency log signs nothing because its tree does not extend what this server signed before; records wait for the log.",
	}, func() float64 {
		if held() {
			return 1
		}
		return 0
	}))
}

// ObserveWitness records the outcome of one request to a witness (a nil
// error: a cosignature that verified).
func (m *Metrics) ObserveWitness(witness string, err error) {
	if err != nil {
		m.witnessUp.WithLabelValues(witness).Set(0)
		m.witnessErr.WithLabelValues(witness).Inc()
		return
	}
	m.witnessUp.WithLabelValues(witness).Set(1)
	m.witnessErr.WithLabelValues(witness) // the series exists from the first request
}

// ScanRecorded counts a scheduled scan this instance recorded.
func (m *Metrics) ScanRecorded(site, verdict string) { m.scans.WithLabelValues(site, verdict).Inc() }

// ScanJudged publishes what a site's scans show against its schedule:
// the latest scheduled scan's verdict and time, and the missing slots.
func (m *Metrics) ScanJudged(site string, st *schedule.Status) {
	for _, v := range []string{consent.ScanClean, consent.ScanFail, consent.ScanInconclusive} {
		on := 0.0
		if st.Latest != nil && st.Latest.Verdict == v {
			on = 1
		}
		m.scanLatest.WithLabelValues(site, v).Set(on)
	}
	if st.Latest != nil {
		m.scanTime.WithLabelValues(site).Set(float64(st.Latest.StartedAt.Unix()))
	}
	m.scanMissed.WithLabelValues(site).Set(float64(len(st.Missing)))
}

// ObserveCommit records one group-commit batch; the store calls it.
func (m *Metrics) ObserveCommit(size int, d time.Duration, err error) {
	m.batchSize.Observe(float64(size))
	m.commitTime.Observe(d.Seconds())
	if err != nil {
		m.commitErrs.Inc()
		return
	}
	m.records.Add(float64(size))
}

// observerKey names one series of the request metrics.
type observerKey struct {
	route, method string
	status        int
}

type observers struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

func (m *Metrics) observe(route, method string, status int, d time.Duration) {
	k := observerKey{route, method, status}
	o, ok := m.cache.Load(k)
	if !ok {
		// Routes, methods and statuses are few; each series is looked up once.
		o, _ = m.cache.LoadOrStore(k, observers{
			count:   m.requests.WithLabelValues(route, k.method, strconv.Itoa(status)),
			latency: m.latency.WithLabelValues(route),
		})
	}
	obs := o.(observers)
	obs.count.Inc()
	obs.latency.Observe(d.Seconds())
}

func (s *Server) metricsHandler() echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
}
