package processing

import (
	"strings"

	"github.com/kurento-go/kms/gst"
)

// videoflip's "method" property has no effect in GStreamer 1.22.0 (Debian 12): the setter is
// ignored (it reads back "none") and frames pass unflipped, while "video-direction" works. Applications written for KMS use
// "videoflip method=horizontal-flip", so the filter mirrors every method into video-direction.
var flipDirections = map[string]string{
	"none": "identity", "clockwise": "90r", "rotate-180": "180", "counterclockwise": "90l",
	"horizontal-flip": "horiz", "vertical-flip": "vert", "upper-left-diagonal": "ul-lr",
	"upper-right-diagonal": "ur-ll", "automatic": "auto",
}

// ParseElement builds a filter element from a command, working around known element bugs.
func ParseElement(command string) (*gst.Element, error) {
	return gst.ParseElement(rewriteCommand(command))
}

// rewriteCommand turns "videoflip method=X" into "videoflip video-direction=Y".
func rewriteCommand(command string) string {
	fields := strings.Fields(command)
	if len(fields) == 0 || fields[0] != "videoflip" {
		return command
	}
	changed := false
	for i, f := range fields[1:] {
		if v, ok := strings.CutPrefix(f, "method="); ok {
			if d, ok := flipDirections[strings.Trim(v, `"'`)]; ok {
				fields[i+1] = "video-direction=" + d
				changed = true
			}
		}
	}
	if !changed {
		return command
	}
	return strings.Join(fields, " ")
}

// propertyQuirk returns the property to set instead of (name, value) on the filter element, if any.
func propertyQuirk(factory, name, value string) (string, string, bool) {
	if factory == "videoflip" && name == "method" {
		if d, ok := flipDirections[value]; ok {
			return "video-direction", d, true
		}
	}
	return "", "", false
}
