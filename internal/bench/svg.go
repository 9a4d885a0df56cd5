package bench

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Plots are inline SVG written by hand: no scripts, no external files, and
// well-formed XML so the report can be checked by a parser.

const (
	plotW, plotH               = 720, 260
	padL, padR, padT, padB     = 64, 16, 28, 40
	innerW, innerH             = plotW - padL - padR, plotH - padT - padB
	svgOpen                    = `<svg xmlns="http://www.w3.org/2000/svg" width="720" height="260" viewBox="0 0 720 260" role="img">`
	axisStyle, gridStyle, font = `stroke="#444" stroke-width="1"`, `stroke="#ddd" stroke-width="1"`, `font-family="sans-serif" font-size="11"`
)

// line is one series of a line chart.
type line struct {
	name  string
	color string
	x, y  []float64
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string {
	switch {
	case v >= 100 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func esc(s string) string { return html.EscapeString(s) }

// frame writes the title, axes, grid and y labels for a plot with y in
// [0, ymax].
func frame(b *strings.Builder, title, xlabel, ylabel string, ymax float64) {
	fmt.Fprintf(b, `<text x="%d" y="18" %s font-weight="bold">%s</text>`, padL, font, esc(title))
	for k := 0; k <= 4; k++ {
		y := float64(padT) + float64(innerH)*(1-float64(k)/4)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" %s/>`, padL, y, padL+innerW, y, gridStyle)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" %s text-anchor="end">%s</text>`, padL-6, y+4, font, fmtNum(ymax*float64(k)/4))
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" %s/>`, padL, padT, padL, padT+innerH, axisStyle)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" %s/>`, padL, padT+innerH, padL+innerW, padT+innerH, axisStyle)
	fmt.Fprintf(b, `<text x="%d" y="%d" %s text-anchor="middle">%s</text>`, padL+innerW/2, plotH-6, font, esc(xlabel))
	fmt.Fprintf(b, `<text x="14" y="%d" %s text-anchor="middle" transform="rotate(-90 14 %d)">%s</text>`, padT+innerH/2, font, padT+innerH/2, esc(ylabel))
}

// lineChart draws series over x in [0, xmax]; a NaN y leaves a gap. The
// shade range (the warm-up) is drawn grey.
func lineChart(title, xlabel, ylabel string, xmax float64, lines []line, shade [2]float64) string {
	var ymax float64
	for _, l := range lines {
		for i := range l.x {
			if !math.IsNaN(l.y[i]) {
				ymax = max(ymax, l.y[i])
			}
		}
	}
	xmax, ymax = max(xmax, 1), niceMax(ymax)
	var b strings.Builder
	b.WriteString(svgOpen)
	if shade[1] > shade[0] {
		x0 := float64(padL) + float64(innerW)*shade[0]/xmax
		x1 := float64(padL) + float64(innerW)*min(shade[1], xmax)/xmax
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#f0f0f0"/>`, x0, padT, x1-x0, innerH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" %s fill="#888">warm-up</text>`, x0+4, padT+12, font)
	}
	frame(&b, title, xlabel, ylabel, ymax)
	step := niceMax(xmax / 8)
	for x := 0.0; x <= xmax+1e-9; x += step {
		px := float64(padL) + float64(innerW)*x/xmax
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" %s text-anchor="middle">%s</text>`, px, padT+innerH+14, font, fmtNum(x))
	}
	for li, l := range lines {
		var pts [][2]float64
		flush := func() {
			switch len(pts) {
			case 0:
			case 1: // a lone point: a dot
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2" fill="%s"/>`, pts[0][0], pts[0][1], l.color)
			default:
				coords := make([]string, len(pts))
				for i, p := range pts {
					coords[i] = fmt.Sprintf("%.1f,%.1f", p[0], p[1])
				}
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, l.color, strings.Join(coords, " "))
			}
			pts = pts[:0]
		}
		for i := range l.x {
			if math.IsNaN(l.y[i]) {
				flush()
				continue
			}
			px := float64(padL) + float64(innerW)*l.x[i]/xmax
			py := float64(padT) + float64(innerH)*(1-l.y[i]/ymax)
			pts = append(pts, [2]float64{px, py})
		}
		flush()
		// Legend in the title row, right-aligned.
		lx := plotW - padR - 100*(len(lines)-li)
		fmt.Fprintf(&b, `<line x1="%d" y1="14" x2="%d" y2="14" stroke="%s" stroke-width="3"/>`, lx, lx+16, l.color)
		fmt.Fprintf(&b, `<text x="%d" y="18" %s>%s</text>`, lx+22, font, esc(l.name))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// barChart draws labelled bars.
func barChart(title, xlabel, ylabel string, labels []string, values []float64, color string) string {
	var ymax float64
	for _, v := range values {
		ymax = max(ymax, v)
	}
	ymax = niceMax(ymax)
	var b strings.Builder
	b.WriteString(svgOpen)
	frame(&b, title, xlabel, ylabel, ymax)
	n := max(len(values), 1)
	slot := float64(innerW) / float64(n)
	for i, v := range values {
		h := float64(innerH) * v / ymax
		x := float64(padL) + slot*float64(i)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`,
			x+slot*0.1, float64(padT+innerH)-h, slot*0.8, h, color, esc(labels[i]), fmtNum(v))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-family="sans-serif" font-size="9" text-anchor="middle">%s</text>`,
			x+slot/2, padT+innerH+12, esc(labels[i]))
	}
	b.WriteString(`</svg>`)
	return b.String()
}
