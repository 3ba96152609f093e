#pragma once
// The server's figures in Prometheus text, with vLLM's metric names under an
// `inkstream:` prefix (so dashboards and autoscalers written for vLLM read
// them): gauges, counters and histograms. Thread-safe.
#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace inkstream {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double v);
  // Appends the _bucket/_sum/_count lines of `name`.
  void write(std::string& out, const std::string& name, const std::string& help) const;

 private:
  mutable std::mutex mutex_;
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

struct Metrics {
  std::atomic<long> running{0}, waiting{0};
  std::atomic<std::uint64_t> prompt_tokens{0}, generation_tokens{0};
  std::atomic<std::uint64_t> prefix_cache_queries{0}, prefix_cache_hits{0};  // tokens
  Histogram ttft{{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
  Histogram inter_token{{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}};
  Histogram e2e{{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}};
  Histogram queue_time{{0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}};

  void finished(const std::string& reason);   // request_success_total{finished_reason}
  void rejected(const std::string& reason);   // admission_rejections_total{reason}
  // kv_usage: fraction of the KV budget in use (all models).
  std::string prometheus(double kv_usage) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::uint64_t> finished_, rejected_;
};

}  // namespace inkstream
