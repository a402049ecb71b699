//! `#[derive(Actor)]`.

use std::collections::HashSet;

use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::meta::ParseNestedMeta;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{DeriveInput, LitStr, Token, Type, TypePath};

use crate::{default_name, lit_str, reject_generics, replace_self, set_once};

/// The options gathered from every `#[actor(...)]` attribute.
#[derive(Default)]
struct Options {
    handles: Option<Vec<TypePath>>,
    args: Option<Type>,
    name: Option<LitStr>,
    /// `async`: the handlers are `AsyncHandler`s.
    is_async: bool,
}

/// Parses the parenthesised list of `handles(...)`, rejecting duplicate entries.
fn handles_list(meta: &ParseNestedMeta) -> syn::Result<Vec<TypePath>> {
    if !meta.input.peek(syn::token::Paren) {
        return Err(meta.error(
            "expected a parenthesised list of message types: write `handles(A, B, path::C)`",
        ));
    }
    let content;
    syn::parenthesized!(content in meta.input);
    let list = Punctuated::<TypePath, Token![,]>::parse_terminated(&content)?;
    let mut seen = HashSet::new();
    for ty in &list {
        if !seen.insert(ty.to_token_stream().to_string()) {
            let shown = ty.to_token_stream().to_string().replace(" :: ", "::");
            return Err(syn::Error::new_spanned(
                ty,
                format!("`{shown}` is listed twice in `handles(...)`: remove the duplicate"),
            ));
        }
    }
    Ok(list.into_iter().collect())
}

/// Parses every `#[actor(...)]` attribute of `input`.
fn options(input: &DeriveInput) -> syn::Result<Options> {
    let mut opts = Options::default();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("actor")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("handles") {
                let list = handles_list(&meta)?;
                set_once(&mut opts.handles, list, &meta, "handles")
            } else if meta.path.is_ident("args") {
                let ty: Type = meta.value()?.parse()?;
                set_once(&mut opts.args, ty, &meta, "args")
            } else if meta.path.is_ident("async") {
                if opts.is_async {
                    return Err(meta.error("`async` is given twice"));
                }
                opts.is_async = true;
                Ok(())
            } else if meta.path.is_ident("name") {
                let name = lit_str(&meta, "name")?;
                set_once(&mut opts.name, name, &meta, "name")
            } else {
                Err(meta.error(
                    "unknown `actor` option: expected `handles(...)`, `args = Type`, \
                     `name = \"...\"` or `async`",
                ))
            }
        })?;
    }
    Ok(opts)
}

/// Expands `#[derive(Actor)]` on `input`.
pub(crate) fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    reject_generics(
        input,
        "an Actor cannot be generic or have lifetimes: its name must identify one concrete \
         type that a child process can rebuild; use concrete types (e.g. a `String` instead \
         of a `&'a str`)",
    )?;
    let opts = options(input)?;
    let ident = &input.ident;
    let handles = opts.handles.ok_or_else(|| {
        syn::Error::new_spanned(
            ident,
            "missing `#[actor(handles(...))]`: list the message types this actor handles, \
             e.g. `#[actor(handles(Add, Get))]`, or write `handles()` if it handles none",
        )
    })?;

    let actor_impl = match &opts.args {
        None => quote! {
            #[automatically_derived]
            impl ::procession::Actor for #ident {
                type Args = Self;
                fn create(
                    args: Self,
                    _cx: &mut ::procession::Context<Self>,
                ) -> ::core::result::Result<Self, ::procession::BoxError> {
                    ::core::result::Result::Ok(args)
                }
            }
        },
        Some(args) => {
            // The user writes `impl Actor`; check its `Args` is the type they declared.
            let span = args.span();
            let args = replace_self(args.to_token_stream(), ident);
            let mut actor = ident.clone();
            actor.set_span(span);
            quote_spanned! {span=>
                const _: () = {
                    fn __procession_args<A: ::procession::Actor<Args = #args>>() {}
                    let _ = __procession_args::<#actor>;
                };
            }
        }
    };

    let name = opts
        .name
        .map_or_else(|| default_name(ident), |lit| quote!(#lit));
    let arms = handles.iter().map(|ty| {
        quote! {
            if tag == <#ty as ::procession::Message>::TAG_ID {
                return ::procession::__private::handle::<Self, #ty>(self, body, cx, reply);
            }
        }
    });
    let unused = handles
        .is_empty()
        .then(|| quote!(let _ = (body, cx, reply);));
    let limits = handles.iter().map(|ty| {
        quote! {
            if tag == <#ty as ::procession::Message>::TAG_ID {
                return <#ty as ::procession::Message>::REDELIVER;
            }
        }
    });
    let names = handles.iter().map(|ty| {
        quote! {
            if tag == <#ty as ::procession::Message>::TAG_ID {
                return ::core::option::Option::Some(<#ty as ::procession::Message>::TAG);
            }
        }
    });
    let markers = handles.iter().map(|ty| {
        // Spanned on the list entry, so a missing `Handler<M>` impl is reported there.
        let mut actor = ident.clone();
        actor.set_span(ty.span());
        quote_spanned! {ty.span()=>
            #[automatically_derived]
            impl ::procession::__private::Handles<#ty> for #actor {}
        }
    });
    // An async actor's `Handler` impls run its `AsyncHandler`s on the process's runtime.
    let async_handlers = handles.iter().filter(|_| opts.is_async).map(|ty| {
        let mut actor = ident.clone();
        actor.set_span(ty.span());
        quote_spanned! {ty.span()=>
            #[automatically_derived]
            impl ::procession::Handler<#ty> for #actor {
                fn handle(
                    &mut self,
                    msg: #ty,
                    cx: &mut ::procession::Context<Self>,
                ) -> <#ty as ::procession::Message>::Reply {
                    ::procession::__private::block_on(
                        <Self as ::procession::AsyncHandler<#ty>>::handle(self, msg, cx),
                    )
                }
            }
        }
    });
    let is_async = opts.is_async;
    let entry = format_ident!("__PROCESSION_ACTOR_{}", ident);
    // Two handled messages with one tag would be indistinguishable on the wire: a
    // compile-time error naming both.
    let mut pairs = Vec::new();
    for (i, a) in handles.iter().enumerate() {
        for b in &handles[i + 1..] {
            let text = format!(
                "`{}` and `{}`, both handled by `{}`, have the same message tag: give one a different #[message(tag = \"...\")]",
                a.to_token_stream().to_string().replace(' ', ""),
                b.to_token_stream().to_string().replace(' ', ""),
                ident
            );
            pairs.push(quote! {
                ::core::assert!(
                    <#a as ::procession::Message>::TAG_ID != <#b as ::procession::Message>::TAG_ID,
                    #text
                );
            });
        }
    }
    let tag_checks = (!pairs.is_empty()).then(|| quote! { const _: () = { #(#pairs)* }; });

    Ok(quote! {
        #actor_impl

        #[automatically_derived]
        impl ::procession::__private::Dispatch for #ident {
            const NAME: &'static str = #name;

            fn dispatch(
                &mut self,
                tag: u64,
                body: &[u8],
                cx: &mut ::procession::Context<Self>,
                reply: ::core::option::Option<&mut ::std::vec::Vec<u8>>,
            ) -> ::core::result::Result<(), ::procession::__private::WireError> {
                #unused
                #(#arms)*
                                ::core::result::Result::Err(::procession::__private::WireError::UnknownTag {
                    tag,
                    actor: ::std::borrow::Cow::Borrowed(<Self as ::procession::__private::Dispatch>::NAME),
                })
            }

            fn redelivery_limit(tag: u64) -> u32 {
                #(#limits)*
                let _ = tag;
                0
            }

            const ASYNC: bool = #is_async;

            fn message_name(tag: u64) -> ::core::option::Option<&'static str> {
                #(#names)*
                let _ = tag;
                ::core::option::Option::None
            }
        }

        #(#markers)*

        #(#async_handlers)*

        // A second Handles impl for every actor: see `NotAMessage`.
        #[automatically_derived]
        #[diagnostic::do_not_recommend]
        impl ::procession::__private::Handles<::procession::__private::NotAMessage> for #ident {}

        #[::procession::__private::linkme::distributed_slice(::procession::__private::ACTORS)]
        #[linkme(crate = ::procession::__private::linkme)]
        #[allow(non_upper_case_globals)]
        #[doc(hidden)]
        static #entry: ::procession::__private::ActorEntry =
            ::procession::__private::ActorEntry::of::<#ident>(
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
            );

        #tag_checks
    })
}
