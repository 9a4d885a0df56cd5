package bench_test

import (
	"fmt"
	"time"

	"github.com/hansa-chain/hansa/internal/bench"
)

// An open-loop schedule at 4 operations per second: operation i is due at
// i/4 s whatever happened to the others, and latency is measured from then.
func ExampleSchedule() {
	s := bench.Schedule{Start: time.Unix(0, 0), Rate: 4}
	fmt.Println(s.At(0).Sub(s.Start), s.At(1).Sub(s.Start), s.At(6).Sub(s.Start))
	fmt.Println(s.Due(s.Start.Add(time.Second)))
	// Output:
	// 0s 250ms 1.5s
	// 5
}
