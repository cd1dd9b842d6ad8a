package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/scorekit/scorekit/solvers"
)

// heartbeatEvery is the interval of the one-line progress reports when stderr is not a terminal;
// a run shorter than it prints none. barAfter is how long a run goes before its bar appears on a
// terminal. (Variables so that tests can shorten them.)
var (
	heartbeatEvery = 10 * time.Second
	barAfter       = time.Second
)

// progress shows a long run's progress on stderr: a bar with rate and time left when stderr is a
// terminal (from barAfter into the run; removed at the end), otherwise a line every
// heartbeatEvery. It is fed by the solver's step reports
// (solvers.Progress), never by estimates. A nil *progress (--quiet) shows nothing.
type progress struct {
	w        io.Writer
	label    string // "scorekit sample: heun"
	unit     string // "steps"
	terminal bool
	bar      *progressbar.ProgressBar
	start    time.Time
	lastBeat time.Time
	note     string // shown after the label (the training loss); set by setNote
}

// setNote sets what the display shows after its label from the next update on ("loss 0.123").
func (p *progress) setNote(note string) {
	if p == nil {
		return
	}
	p.note = note
	if p.bar != nil {
		p.bar.Describe(p.label + " " + note)
	}
}

// newProgress returns the progress display of one run on stderr, nil with quiet.
func newProgress(stderr io.Writer, quiet bool, label, unit string) *progress {
	if quiet {
		return nil
	}
	now := time.Now()
	return &progress{w: stderr, label: label, unit: unit, terminal: isTerminal(stderr), start: now, lastBeat: now}
}

// isTerminal reports whether w is a terminal (a variable so that tests can draw the bar into a
// buffer).
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// report is the solvers.Progress of the run (nil when p is nil).
func (p *progress) report() solvers.Progress {
	if p == nil {
		return nil
	}
	return p.update
}

// update shows that done of total units have completed.
func (p *progress) update(done, total int64) {
	if p.terminal {
		if p.bar == nil && time.Since(p.start) < barAfter {
			return
		}
		if p.bar == nil {
			p.bar = progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(p.w),
				progressbar.OptionSetDescription(p.label),
				progressbar.OptionSetWidth(30),
				progressbar.OptionShowCount(),
				progressbar.OptionShowIts(),
				progressbar.OptionSetItsString(p.unit),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(100*time.Millisecond),
			)
		}
		_ = p.bar.Set64(done) // a failed write to the terminal is not the run's failure
		return
	}
	now := time.Now()
	if done >= total || now.Sub(p.lastBeat) < heartbeatEvery {
		return
	}
	p.lastBeat = now
	line := heartbeat(p.label, p.unit, done, total, now.Sub(p.start))
	if p.note != "" {
		line += "; " + p.note
	}
	fmt.Fprintln(p.w, line)
}

// heartbeat is the one-line report: "LABEL: 40 of 100 steps (40%), 3.1 steps/s, about 19s left".
func heartbeat(label, unit string, done, total int64, elapsed time.Duration) string {
	line := fmt.Sprintf("%s: %d of %d %s (%.0f%%)", label, done, total, unit, 100*float64(done)/float64(total))
	if s := elapsed.Seconds(); s > 0 && done > 0 {
		rate := float64(done) / s
		left := time.Duration(float64(total-done) / rate * float64(time.Second))
		line += fmt.Sprintf(", %.3g %s/s, about %v left", rate, unit, left.Round(time.Second))
	}
	return line
}

// finish removes the bar, so that what follows starts on a clean line.
func (p *progress) finish() {
	if p != nil && p.bar != nil {
		_ = p.bar.Finish()
		_ = p.bar.Clear()
		p.bar = nil
	}
}
