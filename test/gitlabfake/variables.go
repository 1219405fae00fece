package gitlabfake

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

const (
	ownerProject  = "project"
	ownerGroup    = "group"
	ownerInstance = "instance"

	instanceValueLimit = 10000
	conflictMessage    = "There are multiple variables with provided parameters. Please use 'filter[environment_scope]'"
)

var (
	variableKeyRe = regexp.MustCompile(`^[a-zA-Z0-9_]+$`)
	// Ci::Maskable: masked && !raw.
	maskedValueRe = regexp.MustCompile(`^[a-zA-Z0-9_+=/@:.~-]{8,}$`)
	// Ci::Maskable: masked && raw, \A\S{8,}\z with Ruby's \s (which includes \v).
	maskedRawValueRe = regexp.MustCompile(`^[^ \t\n\v\f\r]{8,}$`)
	// Stricter: the reference leaves the environment_scope regex unverified; this is
	// Gitlab::Regex.environment_scope_regex as we know it.
	environmentScopeRe = regexp.MustCompile(`^[a-zA-Z0-9_/${}. *-]+$`)
)

type variable struct {
	id          int64
	owner       string
	ownerID     int64
	key         string
	value       string
	scope       string
	varType     string
	description *string
	protected   bool
	masked      bool
	hidden      bool
	raw         bool
}

type variableJSON struct {
	VariableType     string  `json:"variable_type"`
	Key              string  `json:"key"`
	Value            *string `json:"value"`
	Hidden           *bool   `json:"hidden,omitempty"`
	Protected        bool    `json:"protected"`
	Masked           bool    `json:"masked"`
	Raw              bool    `json:"raw"`
	EnvironmentScope *string `json:"environment_scope,omitempty"`
	// Description is a *string, or nil (no key at all) before 16.2 (instance: 16.8), #11.
	Description any `json:"description,omitempty"`
}

// variableEntity is Entities::Ci::Variable. Hidden values are null from 17.4 (#12; before,
// ci_hidden_variables is off by default and the value is still returned); instance variables
// have no environment_scope and no hidden; hidden exists from 16.11 and description from
// 16.2 (instance 16.8), and older releases have no such key at all (#11, #12).
func (s *Server) variableEntity(v *variable) variableJSON {
	j := variableJSON{
		VariableType: v.varType,
		Key:          v.key,
		Protected:    v.protected,
		Masked:       v.masked,
		Raw:          v.raw,
	}
	if s.descriptionKept(v.owner) {
		j.Description = v.description
	}
	if !v.hidden || !s.release.at(17, 4) {
		val := v.value
		j.Value = &val
	}
	if v.owner != ownerInstance {
		sc := v.scope
		j.EnvironmentScope = &sc
		if s.release.at(16, 11) {
			h := v.hidden
			j.Hidden = &h
		}
	}
	return j
}

// descriptionKept is #11: the description param is declared from 16.2 (instance 16.8).
func (s *Server) descriptionKept(owner string) bool {
	if owner == ownerInstance {
		return s.release.at(16, 8)
	}
	return s.release.at(16, 2)
}

// recordWrite keeps every state a variable was written in, so a test can prove a token was
// never stored unmasked, not even for a moment.
func (s *Server) recordWrite(v *variable) {
	s.varWrites = append(s.varWrites, exportVariable(v))
}

// VariableWrites lists every variable as it was right after each successful create or
// update, values included, oldest first.
func (s *Server) VariableWrites() []Variable {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.varWrites)
}

// variableOwner authorizes the request for the route's owner kind: project
// Maintainer+, group Owner, instance admin; 404 for an invisible project or group.
func (s *Server) variableOwner(c *call) (int64, bool) {
	switch c.route.owner {
	case ownerProject:
		p := s.userProject(c)
		if p == nil {
			return 0, false
		}
		if !c.user.admin && s.projectRole(c.user, p) < Maintainer {
			c.forbidden("")
			return 0, false
		}
		return p.id, true
	case ownerGroup:
		g := s.userGroup(c)
		if g == nil {
			return 0, false
		}
		if !c.user.admin && s.groupRole(c.user, g) < Owner {
			c.forbidden("")
			return 0, false
		}
		return g.id, true
	}
	if !c.user.admin {
		c.forbidden("")
		return 0, false
	}
	return 0, true
}

func variableNotFoundName(owner string) string {
	switch owner {
	case ownerProject:
		return "Variable"
	case ownerGroup:
		return "GroupVariable"
	}
	return "InstanceVariable"
}

func (c *call) variableKey() string { return c.args[len(c.args)-1] }

func (s *Server) ownedVariables(owner string, ownerID int64) []*variable {
	var out []*variable
	for _, v := range s.variables {
		if v.owner == owner && v.ownerID == ownerID {
			out = append(out, v)
		}
	}
	return out
}

// findVariable is the API's find_variable: key plus optional scope filter, 409 when
// several match, 404 when none.
func (s *Server) findVariable(c *call, ownerID int64, key string, scope *string) *variable {
	var found []*variable
	for _, v := range s.ownedVariables(c.route.owner, ownerID) {
		if v.key == key && (scope == nil || c.route.owner == ownerInstance || v.scope == *scope) {
			found = append(found, v)
		}
	}
	switch len(found) {
	case 0:
		c.notFound(variableNotFoundName(c.route.owner))
		return nil
	case 1:
		return found[0]
	}
	c.message(http.StatusConflict, conflictMessage)
	return nil
}

// validateVariable runs the Ci::*Variable model validations. previous is the stored
// record on update, nil on create.
func (s *Server) validateVariable(nv, previous *variable) *fieldErrors {
	e := &fieldErrors{}
	if nv.key == "" {
		e.add("key", "can't be blank")
	}
	if utf8.RuneCountInString(nv.key) > 255 {
		e.add("key", "is too long (maximum is 255 characters)")
	}
	if !variableKeyRe.MatchString(nv.key) {
		e.add("key", "can contain only letters, digits and '_'.")
	}
	for _, other := range s.ownedVariables(nv.owner, nv.ownerID) {
		if other != previous && other.key == nv.key && (nv.owner == ownerInstance || other.scope == nv.scope) {
			e.add("key", "("+nv.key+") has already been taken")
			break
		}
	}
	if nv.masked {
		re := maskedValueRe
		if nv.raw {
			re = maskedRawValueRe
		}
		if !re.MatchString(nv.value) {
			e.add("value", "is invalid")
		}
	}
	if nv.owner == ownerInstance && utf8.RuneCountInString(nv.value) > instanceValueLimit {
		e.add("value", "The value of the provided variable exceeds the 10000 character limit")
	}
	if previous == nil && nv.hidden && !nv.masked {
		e.add("masked", "should be true when variable is hidden")
	}
	if nv.owner != ownerInstance {
		if nv.scope == "" {
			e.add("environment_scope", "can't be blank")
		}
		if utf8.RuneCountInString(nv.scope) > 255 {
			e.add("environment_scope", "is too long (maximum is 255 characters)")
		}
		if nv.scope != "" && !environmentScopeRe.MatchString(nv.scope) {
			e.add("environment_scope", "can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', '*' and spaces")
		}
	}
	if nv.description != nil && utf8.RuneCountInString(*nv.description) > 255 {
		e.add("description", "is too long (maximum is 255 characters)")
	}
	if previous != nil && s.release.at(17, 4) {
		// Ci::HidableVariable update rules (their guards are off while ci_hidden_variables is,
		// the default before 17.4: #12).
		if nv.hidden != previous.hidden {
			e.add("base", "Only new variables can be set as masked and hidden.")
		} else if previous.hidden && nv.masked != previous.masked {
			e.add("base", "The visibility setting cannot be changed for masked and hidden variables.")
		}
	}
	return e
}

// GET .../variables
func (s *Server) listVariables(c *call) {
	ownerID, ok := s.variableOwner(c)
	if !ok {
		return
	}
	v := &validator{p: c.p}
	pg := v.pagination()
	if v.failed() {
		c.grapeError(http.StatusBadRequest, v.message())
		return
	}
	out := []variableJSON{}
	for _, vr := range paginate(c, pg, s.ownedVariables(c.route.owner, ownerID)) {
		out = append(out, s.variableEntity(vr))
	}
	c.resp.json(http.StatusOK, out)
}

// GET .../variables/:key
func (s *Server) getVariable(c *call) {
	ownerID, ok := s.variableOwner(c)
	if !ok {
		return
	}
	v := &validator{p: c.p}
	scope := v.filterScope()
	if v.failed() {
		c.grapeError(http.StatusBadRequest, v.message())
		return
	}
	if vr := s.findVariable(c, ownerID, c.variableKey(), scope); vr != nil {
		c.resp.json(http.StatusOK, s.variableEntity(vr))
	}
}

type variableParams struct {
	value, scope, varType, description   string
	hasValue, hasScope, hasType, hasDesc bool
	protected, masked, maskedAndHidden   *bool
	raw                                  *bool
}

// readVariableParams reads the declared params in Grape's declaration order.
// masked_and_hidden is read on update too, only to reject it (see updateVariable).
func readVariableParams(c *call, v *validator, create bool) variableParams {
	var vp variableParams
	if create {
		_, _ = v.requireStr("key")
		if v.has("value") {
			vp.value, vp.hasValue = v.str("value")
		} else {
			v.fail("value is missing")
		}
	} else {
		vp.value, vp.hasValue = v.str("value")
	}
	vp.protected = v.boolean("protected")
	vp.masked = v.boolean("masked")
	if c.route.owner != ownerInstance && c.s.release.at(16, 11) {
		// #12: declared from 16.11; older releases drop it silently.
		vp.maskedAndHidden = v.boolean("masked_and_hidden")
	}
	vp.raw = v.boolean("raw")
	vp.varType, vp.hasType = v.values("variable_type", false, "env_var", "file")
	if c.route.owner != ownerInstance {
		vp.scope, vp.hasScope = v.str("environment_scope")
	}
	if c.route.owner == ownerGroup && c.s.groupScopesDropped() {
		// EE's filter_variable_parameters drops environment_scope for group variables without
		// a Premium licence (GitLab.com Free and self-managed Free).
		vp.scope, vp.hasScope = "", false
	}
	if c.s.descriptionKept(c.route.owner) {
		vp.description, vp.hasDesc = v.str("description")
	}
	return vp
}

func (vp variableParams) apply(nv *variable) {
	if vp.hasValue {
		nv.value = vp.value
	}
	if vp.protected != nil {
		nv.protected = *vp.protected
	}
	if vp.masked != nil {
		nv.masked = *vp.masked
	}
	if vp.raw != nil {
		nv.raw = *vp.raw
	}
	if vp.hasType {
		nv.varType = vp.varType
	}
	if vp.hasScope {
		nv.scope = vp.scope
	}
	if vp.hasDesc {
		d := vp.description
		nv.description = &d
	}
}

// POST .../variables
func (s *Server) createVariable(c *call) {
	ownerID, ok := s.variableOwner(c)
	if !ok {
		return
	}
	v := &validator{p: c.p}
	vp := readVariableParams(c, v, true)
	if v.failed() {
		c.grapeError(http.StatusBadRequest, v.message())
		return
	}
	key, _ := coerceString(c.p["key"])
	nv := &variable{owner: c.route.owner, ownerID: ownerID, key: strings.TrimSpace(key), scope: "*", varType: "env_var"}
	vp.apply(nv)
	// ChangeVariableService#create_variable_params: masked_and_hidden forces masked.
	if vp.maskedAndHidden != nil && *vp.maskedAndHidden {
		nv.hidden, nv.masked = true, true
	}
	if e := s.validateVariable(nv, nil); e.any() {
		c.validationError(e)
		return
	}
	s.nextVarID++
	nv.id = s.nextVarID
	s.variables = append(s.variables, nv)
	s.recordWrite(nv)
	c.resp.json(http.StatusCreated, s.variableEntity(nv))
}

// PUT .../variables/:key
func (s *Server) updateVariable(c *call) {
	ownerID, ok := s.variableOwner(c)
	if !ok {
		return
	}
	v := &validator{p: c.p}
	vp := readVariableParams(c, v, false)
	scope := v.filterScope()
	if v.failed() {
		c.grapeError(http.StatusBadRequest, v.message())
		return
	}
	if c.route.owner == ownerGroup && !s.release.at(16, 9) {
		// #16: before 16.9 group PUT ignores filter and finds the key alone.
		scope = nil
	}
	var old *variable
	if c.route.owner == ownerGroup && scope == nil {
		// Group PUT without filter looks the key up alone and takes whichever record
		// comes first (here: the oldest), for backward compatibility.
		for _, vr := range s.ownedVariables(ownerGroup, ownerID) {
			if vr.key == c.variableKey() {
				old = vr
				break
			}
		}
		if old == nil {
			c.notFound(variableNotFoundName(ownerGroup))
			return
		}
	} else if old = s.findVariable(c, ownerID, c.variableKey(), scope); old == nil {
		return
	}
	upd := *old
	vp.apply(&upd)
	// Stricter: PUT does not declare masked_and_hidden, so GitLab drops it silently.
	// The fake treats an attempt to change hidden-ness as the model does, so a client
	// that thinks it can hide or unhide a variable in place finds out.
	if vp.maskedAndHidden != nil {
		upd.hidden = *vp.maskedAndHidden
	}
	if e := s.validateVariable(&upd, old); e.any() {
		c.validationError(e)
		return
	}
	*old = upd
	s.recordWrite(old)
	c.resp.json(http.StatusOK, s.variableEntity(old))
}

// DELETE .../variables/:key
func (s *Server) deleteVariable(c *call) {
	ownerID, ok := s.variableOwner(c)
	if !ok {
		return
	}
	v := &validator{p: c.p}
	scope := v.filterScope()
	if v.failed() {
		c.grapeError(http.StatusBadRequest, v.message())
		return
	}
	old := s.findVariable(c, ownerID, c.variableKey(), scope)
	if old == nil {
		return
	}
	s.variables = slices.DeleteFunc(s.variables, func(x *variable) bool { return x == old })
	c.noContent()
}

// SetGroupScopesUnlicensed makes group variables behave as on GitLab Free: environment_scope
// is dropped on create and update, so every group variable has scope *.
func (s *Server) SetGroupScopesUnlicensed(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groupScopesUnlicensed = on
}
