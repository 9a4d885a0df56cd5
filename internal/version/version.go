// Package version holds the build's version and the client version string
// reported by web3_clientVersion.
package version

import (
	"fmt"
	"runtime"
)

// Version is Hansa's semantic version.
const Version = "0.1.0"

// ClientVersion is the web3_clientVersion string, in geth's format.
func ClientVersion() string {
	return fmt.Sprintf("Hansa/v%s/%s-%s/%s", Version, runtime.GOOS, runtime.GOARCH, runtime.Version())
}
