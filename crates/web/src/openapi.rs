//! The OpenAPI 3.1 document of the API, generated from [`crate::api::OPERATIONS`], the
//! same table the routes are built from.

use serde_json::{Map, Value, json};

use crate::api::OPERATIONS;

fn schemas() -> Value {
    let string = json!({ "type": "string" });
    let boolean = json!({ "type": "boolean" });
    let access = json!({ "type": "string", "enum": ["imap", "pop3", "none"] });
    // Bytes, or text with K/M/G/T (powers of 1024); "none" removes the limit.
    let size =
        json!({ "oneOf": [{ "type": "integer", "minimum": 1 }, { "type": "string", "examples": ["2G", "none"] }] });
    // A spam score, or "none" (never) / "default" (the platform's).
    let score =
        json!({ "oneOf": [{ "type": "number" }, { "type": "string", "examples": ["6.5", "none", "default"] }] });
    json!({
        "Error": { "type": "object", "required": ["code", "message"], "properties": {
            "code": string, "message": string, "details": { "type": "object" } } },
        "PasswordCheck": { "type": "object", "required": ["password"], "properties": {
            "password": string, "address": string, "customer": string } },
        "NewCustomer": { "type": "object", "required": ["name", "password"], "properties": {
            "name": string, "password": string, "role": { "type": "string", "enum": ["customer", "admin"] } } },
        "CustomerChange": { "type": "object", "properties": {
            "disabled": boolean, "password": string, "quota": size, "contact_address": string, "spam_reject": score, "spam_junk": score,
            "require_tls": boolean } },
        "NewDomain": { "type": "object", "required": ["name"], "properties": { "name": string } },
        "DomainChange": { "type": "object", "properties": { "verified": boolean, "certificates": boolean, "mta_sts": { "type": "string", "enum": ["off", "testing", "enforce"] } } },
        "NewDomainAlias": { "type": "object", "required": ["name", "target"], "properties": {
            "name": string, "target": string } },
        "NewMailbox": { "type": "object", "required": ["address", "password"], "properties": {
            "address": string, "password": string, "access": access, "submission": boolean, "tls_required": boolean } },
        "MailboxChange": { "type": "object", "properties": {
            "access": access, "submission": boolean, "tls_required": boolean,
            "quota": size, "quota_messages": size, "language": { "type": "string", "enum": ["de", "en"] },
            "warnings": { "type": "object", "additionalProperties": boolean, "propertyNames": {
                "enum": ["unencrypted", "wrong-protocol", "exposed", "locked", "sending-limit", "new-device", "unused-app-password"] } },
            "app_passwords_only": boolean, "require_tls": boolean } },
        "NewAppPassword": { "type": "object", "required": ["name", "services"], "properties": {
            "name": string, "services": { "type": "array", "items": {
                "type": "string", "enum": ["imap", "pop3", "submission"] } } } },
        "NewPassword": { "type": "object", "required": ["password"], "properties": { "password": string, "current_password": string } },
        "NewAlias": { "type": "object", "required": ["address", "mailbox"], "properties": {
            "address": string, "mailbox": string } },
        "NewImport": { "type": "object", "required": ["host", "login", "password"], "additionalProperties": false, "properties": {
            "host": { "type": "string", "examples": ["imap.old-provider.example"] },
            "port": { "type": "integer", "minimum": 1, "maximum": 65535 },
            "security": { "type": "string", "enum": ["tls", "starttls"] }, "login": string, "password": string } },
        "NewToken": { "type": "object", "required": ["name"], "properties": { "name": string } },
        "Vacation": { "type": "object", "additionalProperties": false, "properties": {
            "enabled": boolean, "from": { "type": "string", "examples": ["2026-12-20", ""] },
            "until": { "type": "string", "examples": ["2027-01-06", ""] }, "subject": string, "text": string,
            "addresses": { "type": "array", "items": string },
            "days": { "type": "integer", "minimum": 0, "maximum": 30 } } },
        "Filters": { "type": "object", "required": ["rules"], "additionalProperties": false, "properties": {
            "rules": { "type": "array", "maxItems": 100, "items": { "type": "object", "additionalProperties": false,
                "required": ["header", "value", "action"], "properties": {
                "header": { "type": "string", "examples": ["from", "to", "subject", "List-Id"] },
                "match": { "type": "string", "enum": ["contains", "is"] }, "value": string,
                "action": { "type": "string", "enum": ["move", "mark_read", "flag", "discard"] },
                "folder": string } } } } },
        "ActiveSieveScript": { "type": "object", "required": ["name"], "additionalProperties": false, "properties": {
            "name": { "type": ["string", "null"] } } },
        "SieveScript": { "type": "object", "required": ["text"], "additionalProperties": false, "properties": {
            "text": string } },
    })
}

/// The path parameters of an OpenAPI path template, like `id` in `/mailboxes/{id}`.
pub fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect()
}

pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPERATIONS {
        let mut operation = json!({
            "operationId": op.id,
            "summary": op.summary,
            "description": format!("Who may call it: {}.", op.who),
            "responses": {
                "default": { "description": "An error", "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/Error" } } } },
                "200": { "description": "Success", "content": { "application/json": { "schema": {} } } },
            },
        });
        let Some(object) = operation.as_object_mut() else { continue };
        let parameters: Vec<Value> = path_parameters(op.path)
            .into_iter()
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "integer" } }))
            .collect();
        if !parameters.is_empty() {
            object.insert("parameters".into(), Value::Array(parameters));
        }
        if let Some(body) = op.body {
            object.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { "application/json": {
                    "schema": { "$ref": format!("#/components/schemas/{body}") } } } }),
            );
        }
        if op.who == "anyone" {
            object.insert("security".into(), json!([]));
        }
        let entry = paths.entry(op.path.to_string()).or_insert_with(|| json!({}));
        if let Some(methods) = entry.as_object_mut() {
            methods.insert(op.method.to_ascii_lowercase(), operation);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Postfach API",
            "version": "1",
            "description": "Everything the Postfach panel does. Authenticate with `Authorization: Bearer <token>` \
                (tokens are created on the account page) or with the panel session cookie plus the `X-CSRF-Token` \
                header on changes. Errors are `{code, message}`; messages follow Accept-Language (de, en).",
        },
        "servers": [{ "url": "/api/v1" }],
        "security": [{ "bearer": [] }, { "session": [] }],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "session": { "type": "apiKey", "in": "cookie", "name": crate::SESSION_COOKIE },
            },
        },
    })
}
