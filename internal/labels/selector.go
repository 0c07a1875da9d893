// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

// Package labels parses and evaluates Kubernetes label selectors
// (k8s.io/apimachinery/pkg/labels): "a=b,c!=d,e in (x,y),f notin (z),g,!h",
// plus the numeric "n>3" and "n<7".
package labels

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/svcreg/svcreg/internal/validation"
)

// Operator is the relation of a requirement.
type Operator string

// The operators of the selector grammar.
const (
	Equals       Operator = "="
	DoubleEquals Operator = "=="
	NotEquals    Operator = "!="
	In           Operator = "in"
	NotIn        Operator = "notin"
	Exists       Operator = "exists"
	DoesNotExist Operator = "!"
	GreaterThan  Operator = "gt"
	LessThan     Operator = "lt"
)

// Requirement is one comma-separated term of a selector.
type Requirement struct {
	Key      string
	Operator Operator
	Values   []string // sorted and unique; one for =, ==, !=, gt, lt
}

// Matches reports whether labels satisfy r.
func (r Requirement) Matches(labels map[string]string) bool {
	v, ok := labels[r.Key]
	switch r.Operator {
	case Equals, DoubleEquals, In:
		return ok && slices.Contains(r.Values, v)
	case NotEquals, NotIn:
		return !ok || !slices.Contains(r.Values, v)
	case Exists:
		return ok
	case DoesNotExist:
		return !ok
	case GreaterThan, LessThan:
		if !ok {
			return false
		}
		have, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return false
		}
		want, _ := strconv.ParseInt(r.Values[0], 10, 64) // checked by Parse
		if r.Operator == GreaterThan {
			return have > want
		}
		return have < want
	}
	return false
}

// String renders r in the selector syntax.
func (r Requirement) String() string {
	switch r.Operator {
	case Exists:
		return r.Key
	case DoesNotExist:
		return "!" + r.Key
	case In, NotIn:
		return r.Key + " " + string(r.Operator) + " (" + strings.Join(r.Values, ",") + ")"
	case GreaterThan:
		return r.Key + ">" + r.Values[0]
	case LessThan:
		return r.Key + "<" + r.Values[0]
	}
	return r.Key + string(r.Operator) + r.Values[0]
}

// Selector is a conjunction of requirements; the empty selector matches
// everything.
type Selector []Requirement

// Matches reports whether labels satisfy every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s {
		if !r.Matches(labels) {
			return false
		}
	}
	return true
}

// Empty reports whether s selects everything.
func (s Selector) Empty() bool { return len(s) == 0 }

// String renders s in canonical form: requirements sorted by key.
func (s Selector) String() string {
	parts := make([]string, len(s))
	for i, r := range s {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// Parse parses a selector. Errors say where and what was expected.
func Parse(s string) (Selector, error) {
	p := parser{in: s}
	return p.parse()
}

// ParseLimited parses a selector of at most max terms (requirements, and
// the values of their sets; 0: no limit). Matching costs one step per
// term, and a watch's selector runs on every event it is offered.
func ParseLimited(s string, max int) (Selector, error) {
	p := parser{in: s, budget: max}
	return p.parse()
}

// SelectorFromMap is the equality selector of a service's selector map.
func SelectorFromMap(m map[string]string) Selector {
	sel := make(Selector, 0, len(m))
	for k, v := range m {
		sel = append(sel, Requirement{Key: k, Operator: Equals, Values: []string{v}})
	}
	slices.SortFunc(sel, func(a, b Requirement) int { return strings.Compare(a.Key, b.Key) })
	return sel
}

// MatchesMap reports whether every pair of selector is among labels; an empty
// selector matches nothing (a selectorless service selects no instances).
func MatchesMap(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if have, ok := labels[k]; !ok || have != v {
			return false
		}
	}
	return true
}

type token int

const (
	tokEnd token = iota
	tokIdent
	tokComma
	tokOpen
	tokClose
	tokNot       // !
	tokEquals    // =
	tokDoubleEq  // ==
	tokNotEquals // !=
	tokGreater   // >
	tokLess      // <
	tokIn        // in
	tokNotIn     // notin
)

type parser struct {
	budget int // the most terms allowed; 0: no limit
	terms  int
	in     string
	pos    int
	// one token of lookahead
	tok    token
	text   string
	tokPos int
	peeked bool
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// isSpecial reports whether c ends an identifier.
func isSpecial(c byte) bool {
	return isSpace(c) || strings.IndexByte("!=,()<>", c) >= 0
}

func (p *parser) next() (token, string, int) {
	if p.peeked {
		p.peeked = false
		return p.tok, p.text, p.tokPos
	}
	for p.pos < len(p.in) && isSpace(p.in[p.pos]) {
		p.pos++
	}
	start := p.pos
	if p.pos == len(p.in) {
		return tokEnd, "", start
	}
	c := p.in[p.pos]
	two := ""
	if p.pos+1 < len(p.in) {
		two = p.in[p.pos : p.pos+2]
	}
	switch {
	case two == "==":
		p.pos += 2
		return tokDoubleEq, two, start
	case two == "!=":
		p.pos += 2
		return tokNotEquals, two, start
	}
	switch c {
	case ',':
		p.pos++
		return tokComma, ",", start
	case '(':
		p.pos++
		return tokOpen, "(", start
	case ')':
		p.pos++
		return tokClose, ")", start
	case '!':
		p.pos++
		return tokNot, "!", start
	case '=':
		p.pos++
		return tokEquals, "=", start
	case '>':
		p.pos++
		return tokGreater, ">", start
	case '<':
		p.pos++
		return tokLess, "<", start
	}
	for p.pos < len(p.in) && !isSpecial(p.in[p.pos]) {
		p.pos++
	}
	word := p.in[start:p.pos]
	switch word {
	case "in":
		return tokIn, word, start
	case "notin":
		return tokNotIn, word, start
	}
	return tokIdent, word, start
}

func (p *parser) peek() token {
	if !p.peeked {
		p.tok, p.text, p.tokPos = p.next()
		p.peeked = true
	}
	return p.tok
}

// count charges terms against the budget.
func (p *parser) count(n int) error {
	p.terms += n
	if p.budget > 0 && p.terms > p.budget {
		return fmt.Errorf("has more than %d terms (requirements and set values), the limit", p.budget)
	}
	return nil
}

func (p *parser) errorf(pos int, format string, args ...any) error {
	return fmt.Errorf("at position %d: %s", pos, fmt.Sprintf(format, args...))
}

func (p *parser) parse() (Selector, error) {
	var sel Selector
	if p.peek() == tokEnd {
		return sel, nil
	}
	for {
		r, err := p.requirement()
		if err != nil {
			return nil, err
		}
		terms := 1
		if r.Operator == In || r.Operator == NotIn {
			terms = len(r.Values)
		}
		if err := p.count(terms); err != nil {
			return nil, err
		}
		sel = append(sel, r)
		tok, text, pos := p.next()
		switch tok {
		case tokEnd:
			slices.SortStableFunc(sel, func(a, b Requirement) int { return strings.Compare(a.Key, b.Key) })
			return sel, nil
		case tokComma:
			if p.peek() == tokEnd {
				return nil, p.errorf(pos, "found trailing ','; expected a requirement")
			}
		default:
			return nil, p.errorf(pos, "found %q; expected ',' or the end", text)
		}
	}
}

func (p *parser) requirement() (Requirement, error) {
	negated := false
	if p.peek() == tokNot {
		p.next()
		negated = true
	}
	tok, key, pos := p.next()
	if tok != tokIdent {
		return Requirement{}, p.errorf(pos, "found %q; expected a label key", key)
	}
	if msgs := validation.IsQualifiedName(key); len(msgs) != 0 {
		return Requirement{}, p.errorf(pos, "invalid label key %q: %s", key, strings.Join(msgs, "; "))
	}
	if negated {
		return Requirement{Key: key, Operator: DoesNotExist}, nil
	}
	switch p.peek() {
	case tokEnd, tokComma:
		return Requirement{Key: key, Operator: Exists}, nil
	}
	tok, text, pos := p.next()
	var op Operator
	switch tok {
	case tokEquals:
		op = Equals
	case tokDoubleEq:
		op = DoubleEquals
	case tokNotEquals:
		op = NotEquals
	case tokGreater:
		op = GreaterThan
	case tokLess:
		op = LessThan
	case tokIn:
		op = In
	case tokNotIn:
		op = NotIn
	default:
		return Requirement{}, p.errorf(pos, "found %q; expected an operator (=, ==, !=, in, notin, >, <)", text)
	}
	var values []string
	if op == In || op == NotIn {
		vs, err := p.valueSet()
		if err != nil {
			return Requirement{}, err
		}
		values = vs
	} else {
		v, err := p.value(op == GreaterThan || op == LessThan)
		if err != nil {
			return Requirement{}, err
		}
		values = []string{v}
	}
	return Requirement{Key: key, Operator: op, Values: values}, nil
}

// value reads one value; "a=" (an empty value) is allowed, as in Kubernetes.
func (p *parser) value(numeric bool) (string, error) {
	v := ""
	pos := p.pos
	if p.peek() == tokIdent {
		_, v, pos = p.next()
	} else if numeric {
		_, text, pos := p.next()
		return "", p.errorf(pos, "found %q; expected an integer", text)
	}
	if numeric {
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return "", p.errorf(pos, "invalid integer value %q", v)
		}
		return v, nil
	}
	if msgs := validation.IsValidLabelValue(v); len(msgs) != 0 {
		return "", p.errorf(pos, "invalid label value %q: %s", v, strings.Join(msgs, "; "))
	}
	return v, nil
}

func (p *parser) valueSet() ([]string, error) {
	if tok, text, pos := p.next(); tok != tokOpen {
		return nil, p.errorf(pos, "found %q; expected '('", text)
	}
	var values []string
	for {
		if p.peek() != tokIdent {
			_, text, pos := p.next()
			return nil, p.errorf(pos, "found %q; expected a value (a set may not hold an empty value)", text)
		}
		v, err := p.value(false)
		if err != nil {
			return nil, err
		}
		values = append(values, v)
		if p.budget > 0 && len(values) > p.budget {
			return nil, p.count(len(values))
		}
		tok, text, pos := p.next()
		switch tok {
		case tokComma:
			continue
		case tokClose:
			slices.Sort(values)
			return slices.Compact(values), nil
		default:
			return nil, p.errorf(pos, "found %q; expected ',' or ')'", text)
		}
	}
}
