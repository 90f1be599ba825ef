package worker_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/solvequeue/solvequeue/worker"
)

func ExampleLoadPolicy() {
	dir, err := os.MkdirTemp("", "policy")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "policy.yaml")
	err = os.WriteFile(path, []byte(`
retry: {maxRetries: 4}
codes:
  CAPTCHA_UNSOLVABLE: failed
queues:
  scrapers:
    budget: {window: 24h, maxCost: 20.00}
    providers: [CapSolver, CapMonster]
`), 0o600)
	if err != nil {
		panic(err)
	}
	policy, err := worker.LoadPolicy(path)
	if err != nil {
		panic(err)
	}
	fmt.Println(policy.Classification().MaxRetries(), policy.Queue("scrapers").Budget, policy.Queue("scrapers").Providers)
	// The policy goes to the worker as it is: worker.New(worker.Config{Policy: policy, ...}).

	if err := os.WriteFile(path, []byte("codes:\n  CAPCHA_UNSOLVABLE: failed\n"), 0o600); err != nil {
		panic(err)
	}
	_, err = worker.LoadPolicy(path)
	fmt.Println(err != nil)
	// Output:
	// 4 {window: 24h0m0s, maxCost: 20} [CapSolver CapMonster]
	// true
}
