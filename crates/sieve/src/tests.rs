use crate::{ScriptError, check};

#[test]
fn a_good_script_passes() {
    let text = "require [\"fileinto\", \"mailbox\", \"imap4flags\", \"variables\", \"relational\", \"comparator-i;ascii-numeric\"];\n\
                if header :contains \"subject\" \"invoice\" { fileinto :create \"Invoices\"; addflag \"\\\\Flagged\"; }\n";
    assert_eq!(check(text), Ok(()));
}

#[test]
fn a_syntax_error_names_line_and_column() {
    let err = check("require \"fileinto\";\nif header :contains \"subject\" \"x\" {\n  fileinto \"A\"\n}\n")
        .expect_err("refused");
    assert_eq!(err.line, 4);
    assert!(err.to_string().starts_with("line 4, column "), "{err}");
}

#[test]
fn an_undeclared_extension_says_what_to_require() {
    let err = check("fileinto \"A\";\n").expect_err("refused");
    assert!(err.what.contains("require \"fileinto\""), "{err}");
}

#[test]
fn an_unsupported_extension_is_refused_where_it_is_required() {
    let err: ScriptError = check("require [\"fileinto\",\n  \"enotify\"];\nkeep;\n").expect_err("refused");
    assert_eq!((err.line, err.column), (2, 3));
    assert!(err.what.contains("\"enotify\" is not supported"), "{err}");
    let err = check("require \"include\";\nkeep;\n").expect_err("refused");
    assert!(err.what.contains("not supported"), "{err}");
}

#[test]
fn an_unclosed_string_is_explained() {
    let err = check("require \"fileinto;\n").expect_err("refused");
    assert!(err.what.contains("not closed"), "{err}");
}
