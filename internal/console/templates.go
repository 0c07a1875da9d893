// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package console

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"

	"google.golang.org/protobuf/proto"
	"k8s.io/client-go/util/jsonpath"

	"github.com/svcreg/svcreg/internal/manifest"
)

// kubectl's template outputs: -o jsonpath=TEMPLATE runs a JSONPath
// template (kubectl's own implementation) over what -o json prints;
// -o custom-columns=HEADER:.path,... prints a column per path.
const (
	jsonPathPrefix      = "jsonpath="
	customColumnsPrefix = "custom-columns="
)

// parseTemplateOutput checks a template output's template.
func parseTemplateOutput(s string) error {
	if tmpl, ok := strings.CutPrefix(s, jsonPathPrefix); ok {
		_, err := newJSONPath(tmpl)
		return err
	}
	if spec, ok := strings.CutPrefix(s, customColumnsPrefix); ok {
		_, err := parseColumns(spec)
		return err
	}
	return errNotTemplate
}

var errNotTemplate = fmt.Errorf("not a template output")

func newJSONPath(tmpl string) (*jsonpath.JSONPath, error) {
	j := jsonpath.New("output").AllowMissingKeys(true) // kubectl's --allow-missing-template-keys default
	if err := j.Parse(tmpl); err != nil {
		return nil, fmt.Errorf("error parsing jsonpath %s: %v", tmpl, err)
	}
	return j, nil
}

type column struct {
	header string
	path   *jsonpath.JSONPath
}

// parseColumns reads HEADER:.path,... ; a path may leave out the braces,
// as kubectl's do (".metadata.name" is "{.metadata.name}").
func parseColumns(spec string) ([]column, error) {
	if spec == "" {
		return nil, fmt.Errorf("custom-columns format specified but no custom columns given")
	}
	var cols []column
	for _, part := range strings.Split(spec, ",") {
		header, path, ok := strings.Cut(part, ":")
		if !ok || header == "" || path == "" {
			return nil, fmt.Errorf("unexpected custom-columns spec: %s, expected <header>:<json-path-expr>", part)
		}
		if !strings.HasPrefix(path, "{") {
			path = "{" + strings.TrimPrefix(path, "$") + "}"
		}
		j, err := newJSONPath(path)
		if err != nil {
			return nil, err
		}
		cols = append(cols, column{header, j})
	}
	return cols, nil
}

// printTemplate prints msgs with a template output.
func printTemplate(w io.Writer, output string, msgs []proto.Message, list bool) error {
	if tmpl, ok := strings.CutPrefix(output, jsonPathPrefix); ok {
		j, err := newJSONPath(tmpl)
		if err != nil {
			return err
		}
		data, err := manifest.Documents(msgs, list)
		if err != nil {
			return err
		}
		return j.Execute(w, data)
	}
	cols, err := parseColumns(strings.TrimPrefix(output, customColumnsPrefix))
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	headers := make([]string, len(cols))
	for i, c := range cols {
		headers[i] = c.header
	}
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	for _, msg := range msgs {
		doc, err := manifest.Documents([]proto.Message{msg}, false)
		if err != nil {
			return err
		}
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = cell(c.path, doc)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// cell is one column of one object: its values comma-separated, or
// <none>, as kubectl prints them.
func cell(j *jsonpath.JSONPath, doc any) string {
	results, err := j.FindResults(doc)
	if err != nil {
		return "<none>"
	}
	var vals []string
	for _, r := range results {
		for _, v := range r {
			var b bytes.Buffer
			if err := j.PrintResults(&b, []reflect.Value{v}); err == nil {
				vals = append(vals, b.String())
			}
		}
	}
	if len(vals) == 0 {
		return "<none>"
	}
	return strings.Join(vals, ",")
}

// Namespaces prints the namespaces that hold services or instances (a
// namespace exists while something is in it), with their counts.
func (c *Console) Namespaces(ctx context.Context, output string) error {
	svcs, err := c.listServices(ctx, Scope{AllNamespaces: true})
	if err != nil {
		return err
	}
	insts, err := c.listInstances(ctx, Scope{AllNamespaces: true})
	if err != nil {
		return err
	}
	services, instances := map[string]int{}, map[string]int{}
	for _, s := range svcs {
		services[s.GetNamespace()]++
	}
	for _, i := range insts {
		instances[i.GetNamespace()]++
	}
	names := slices.Sorted(maps.Keys(services))
	for n := range instances {
		if services[n] == 0 {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	switch output {
	case OutputName:
		for _, n := range names {
			fmt.Fprintf(c.Out, "namespace/%s\n", n)
		}
		return nil
	case OutputTable, OutputWide:
	default:
		return fmt.Errorf("namespaces print as a table or with -o name (a namespace has no document of its own)")
	}
	if len(names) == 0 {
		fmt.Fprintln(c.Err, "No resources found")
		return nil
	}
	tw := tabwriter.NewWriter(c.Out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSERVICES\tINSTANCES")
	for _, n := range names {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", n, services[n], instances[n])
	}
	return tw.Flush()
}
