//! Unit tests: expand example inputs and inspect the generated tokens or errors.

use syn::{parse_quote, DeriveInput};

/// `tokens` as a string with all whitespace removed, so checks ignore token spacing.
fn compact(tokens: impl ToString) -> String {
    tokens.to_string().split_whitespace().collect()
}

fn message(input: DeriveInput) -> String {
    compact(crate::message::expand(&input).expect("expansion should succeed"))
}

fn message_err(input: DeriveInput) -> String {
    match crate::message::expand(&input) {
        Ok(tokens) => panic!("expected an error, got {tokens}"),
        Err(e) => e.to_string(),
    }
}

fn actor(input: DeriveInput) -> String {
    compact(crate::actor::expand(&input).expect("expansion should succeed"))
}

fn actor_err(input: DeriveInput) -> String {
    match crate::actor::expand(&input) {
        Ok(tokens) => panic!("expected an error, got {tokens}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn message_defaults() {
    let out = message(parse_quote!(
        struct Ping;
    ));
    assert!(out.contains("impl::procession::MessageforPing"), "{out}");
    assert!(out.contains("typeReply=();"), "{out}");
    assert!(
        out.contains(r#"constTAG:&'staticstr=::core::concat!(::core::module_path!(),"::Ping");"#)
    );
    assert!(!out.contains("TAG_ID"), "{out}");
}

#[test]
fn message_options_across_attributes() {
    let out = message(parse_quote!(
        #[derive(Clone)]
        #[message(reply = Vec<u8>)]
        #[message(tag = "my::Add")]
        struct Add(u64);
    ));
    assert!(out.contains("typeReply=Vec<u8>;"), "{out}");
    assert!(out.contains(r#"constTAG:&'staticstr="my::Add";"#), "{out}");
}

#[test]
fn message_raw_ident_tag() {
    let out = message(parse_quote!(
        struct r#type;
    ));
    assert!(out.contains(r#""::type""#), "{out}");
}

#[test]
fn message_errors() {
    let generic = message_err(parse_quote!(
        struct Wrap<T>(T);
    ));
    assert!(generic.starts_with("a Message cannot be generic: its tag must name one concrete type"));
    let lifetime = message_err(parse_quote!(
        struct Borrow<'a>(&'a str);
    ));
    assert!(lifetime.contains("cannot be generic"), "{lifetime}");
    let unknown = message_err(parse_quote!(
        #[message(replies = u8)]
        struct A;
    ));
    assert!(unknown.contains("unknown `message` option"), "{unknown}");
    let dup = message_err(parse_quote!(
        #[message(reply = u8)]
        #[message(reply = u16)]
        struct A;
    ));
    assert!(dup.contains("duplicate `reply`"), "{dup}");
    let not_lit = message_err(parse_quote!(
        #[message(tag = foo)]
        struct A;
    ));
    assert!(not_lit.contains("write `tag = \"...\"`"), "{not_lit}");
    let empty = message_err(parse_quote!(
        #[message(tag = "")]
        struct A;
    ));
    assert!(empty.contains("must not be empty"), "{empty}");
}

#[test]
fn actor_derives_everything() {
    let out = actor(parse_quote!(
        #[actor(handles(Add, ops::Get))]
        struct Counter {
            total: u64,
        }
    ));
    for expected in [
        "impl::procession::ActorforCounter{typeArgs=Self;fncreate(args:Self,_cx:&mut::procession::Context<Self>,)->::core::result::Result<Self,::procession::BoxError>{::core::result::Result::Ok(args)}}",
        "impl::procession::__private::DispatchforCounter",
        r#"constNAME:&'staticstr=::core::concat!(::core::module_path!(),"::Counter");"#,
        "iftag==<Addas::procession::Message>::TAG_ID{return::procession::__private::handle::<Self,Add>(self,body,cx,reply);}",
        "iftag==<ops::Getas::procession::Message>::TAG_ID{return::procession::__private::handle::<Self,ops::Get>(self,body,cx,reply);}",
        "::procession::__private::WireError::UnknownTag{tag,actor:::std::borrow::Cow::Borrowed(<Selfas::procession::__private::Dispatch>::NAME),}",
        "impl::procession::__private::Handles<Add>forCounter{}",
        "impl::procession::__private::Handles<ops::Get>forCounter{}",
        "#[::procession::__private::linkme::distributed_slice(::procession::__private::ACTORS)]",
        "#[linkme(crate=::procession::__private::linkme)]",
        r#"static__PROCESSION_ACTOR_Counter:::procession::__private::ActorEntry=::procession::__private::ActorEntry::of::<Counter>(::core::concat!(::core::module_path!(),"::",::core::stringify!(Counter)),);"#,
        "::core::assert!(<Addas::procession::Message>::TAG_ID!=<ops::Getas::procession::Message>::TAG_ID,",
        "`Add`and`ops::Get`,bothhandledby`Counter`,havethesamemessagetag",
    ] {
        assert!(out.contains(expected), "missing {expected}\nin {out}");
    }
    assert!(!out.contains("let_=(body,cx,reply);"), "{out}");
}

#[test]
fn actor_with_args_and_name() {
    let out = actor(parse_quote!(
        #[actor(handles(), name = "pinger")]
        #[actor(args = Option<Box<Self>>)]
        struct Pinger;
    ));
    assert!(!out.contains("impl::procession::ActorforPinger"), "{out}");
    assert!(out.contains(
        "const_:()={fn__procession_args<A:::procession::Actor<Args=Option<Box<Pinger>>>>(){}let_=__procession_args::<Pinger>;};"
    ), "{out}");
    assert!(out.contains(r#"constNAME:&'staticstr="pinger";"#), "{out}");
    assert!(out.contains("let_=(body,cx,reply);"), "{out}");
    // Only the marker every actor gets (see `NotAMessage`), no listed message.
    let handles: Vec<&str> = out.matches("Handles<").collect();
    assert_eq!(handles.len(), 1, "{out}");
    assert!(
        out.contains("Handles<::procession::__private::NotAMessage>forPinger{}"),
        "{out}"
    );
}

#[test]
fn actor_errors() {
    let missing = actor_err(parse_quote!(
        #[actor(args = u32)]
        struct A;
    ));
    assert!(
        missing.starts_with("missing `#[actor(handles(...))]`"),
        "{missing}"
    );
    let generic = actor_err(parse_quote!(
        #[actor(handles())]
        struct A<'a, T>(&'a T);
    ));
    assert!(
        generic.starts_with("an Actor cannot be generic or have lifetimes"),
        "{generic}"
    );
    let dup = actor_err(parse_quote!(
        #[actor(handles(Add, m::Get, m::Get))]
        struct A;
    ));
    assert!(dup.contains("`m::Get` is listed twice"), "{dup}");
    let twice = actor_err(parse_quote!(
        #[actor(handles(Add))]
        #[actor(handles(Get))]
        struct A;
    ));
    assert!(twice.contains("duplicate `handles`"), "{twice}");
    let unknown = actor_err(parse_quote!(
        #[actor(handles(), reply = u8)]
        struct A;
    ));
    assert!(unknown.contains("unknown `actor` option"), "{unknown}");
    let no_parens = actor_err(parse_quote!(
        #[actor(handles = [Add])]
        struct A;
    ));
    assert!(
        no_parens.contains("write `handles(A, B, path::C)`"),
        "{no_parens}"
    );
    let name = actor_err(parse_quote!(
        #[actor(handles(), name = 3)]
        struct A;
    ));
    assert!(name.contains("write `name = \"...\"`"), "{name}");
}
