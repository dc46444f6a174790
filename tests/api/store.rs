//! The store conformance suite: the same tests against SQLite and PostgreSQL, through the
//! `Store` interface.

use chrono::{Duration, Utc};
use intune_mtd_emulator::domain::tenant::{App, AppKind, Tenant};
use intune_mtd_emulator::odata;
use intune_mtd_emulator::store::{DeviceManagementRecord, Effects, ListQuery, SigningKeyRecord, Store, StoreError};
use serde_json::json;

use crate::common::{open_store, test_database, Backend};

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::run(crate::common::Backend::Sqlite, super::$name).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::run(crate::common::Backend::Postgres, super::$name).await
                }
            }
        )*
    };
}

async fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(std::sync::Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let db = test_database(backend).await;
    let store = open_store(&db).await;
    test(store).await;
}

conformance!(
    tenants_round_trip_and_ids_are_unique,
    tenant_lists_filter_sort_page_and_count,
    clock_offsets_are_compare_and_set,
    apps_belong_to_one_tenant,
    the_first_signing_key_wins,
    device_management_updates_are_compare_and_set,
    reset_and_delete_clear_what_the_tenant_owns
);

fn tenant(id: &str, name: &str, created: chrono::DateTime<Utc>) -> Tenant {
    Tenant {
        id: id.into(),
        display_name: name.into(),
        created_at: created,
        clock_offset_us: 0,
        bootstrap_client_id: format!("boot-{id}"),
        limits: None,
        faults: Vec::new(),
    }
}

fn app(tenant: &str, client: &str) -> App {
    App {
        tenant_id: tenant.into(),
        client_id: client.into(),
        display_name: "app".into(),
        kind: AppKind::Graph,
        secret_hash: "00".into(),
        permissions: vec!["User.Read.All".into()],
        connector_id: None,
        sign_in: Default::default(),
        created_at: Utc::now(),
    }
}

fn dm(tenant: &str, value: i64) -> DeviceManagementRecord {
    DeviceManagementRecord {
        tenant_id: tenant.into(),
        properties: json!({ "settings": { "n": value } }).as_object().unwrap().clone(),
        revision: 0,
    }
}

async fn create(store: &dyn Store, id: &str, name: &str, created: chrono::DateTime<Utc>) {
    store
        .insert_tenant(&tenant(id, name, created), &app(id, &format!("boot-{id}")), &dm(id, 1))
        .await
        .unwrap();
}

async fn tenants_round_trip_and_ids_are_unique(store: std::sync::Arc<dyn Store>) {
    let created = Utc::now();
    create(store.as_ref(), "t1", "One", created).await;
    let got = store.get_tenant("t1").await.unwrap().unwrap();
    assert_eq!(got.display_name, "One");
    assert!(
        (got.created_at - created).num_microseconds().unwrap().abs() <= 1,
        "timestamps keep microseconds"
    );
    let again = store
        .insert_tenant(&tenant("t1", "Again", created), &app("t1", "other"), &dm("t1", 2))
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    // The failed insert left nothing behind.
    assert!(store.get_app("t1", "other").await.unwrap().is_none());
    assert!(store.get_tenant("t2").await.unwrap().is_none());
}

async fn tenant_lists_filter_sort_page_and_count(store: std::sync::Arc<dyn Store>) {
    let t0 = Utc::now();
    for (i, name) in ["alpha", "Beta", "gamma", "ALPHA two", "delta_x", "50% off"]
        .iter()
        .enumerate()
    {
        create(store.as_ref(), &format!("t{i}"), name, t0 + Duration::minutes(i as i64)).await;
    }
    let list = |filter: &str, order: Option<&str>, limit: u64, offset: u64| {
        let store = store.clone();
        let filter = filter.to_string();
        let order = order.map(str::to_string);
        async move {
            // The store takes the query as parsed and translates it itself.
            let filter = (!filter.is_empty()).then(|| odata::parse_filter(&filter).unwrap());
            let order_by = order
                .map(|o| odata::parse_query(&format!("$orderby={o}")).unwrap().orderby)
                .unwrap_or_default();
            let page = store
                .list_tenants(&ListQuery {
                    filter,
                    order_by,
                    limit,
                    offset,
                    count: true,
                    ..Default::default()
                })
                .await
                .unwrap();
            (
                page.items.into_iter().map(|t| t.display_name).collect::<Vec<_>>(),
                page.total.unwrap(),
            )
        }
    };
    assert_eq!(
        list("startswith(displayName,'alpha')", Some("displayName"), 10, 0).await,
        (vec!["alpha".to_string(), "ALPHA two".into()], 2)
    );
    assert_eq!(
        list("displayName eq 'beta'", None, 10, 0).await.0,
        vec!["Beta".to_string()]
    );
    assert_eq!(
        list("contains(displayName,'_')", None, 10, 0).await.0,
        vec!["delta_x".to_string()],
        "_ is not a wildcard"
    );
    assert_eq!(
        list("contains(displayName,'%')", None, 10, 0).await.0,
        vec!["50% off".to_string()],
        "% is not a wildcard"
    );
    let after = (t0 + Duration::minutes(3)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(
        list(
            &format!("createdDateTime ge {after}"),
            Some("createdDateTime desc"),
            10,
            0
        )
        .await
        .0,
        vec!["50% off".to_string(), "delta_x".into(), "ALPHA two".into()]
    );
    let (page, total) = list("", Some("createdDateTime"), 2, 2).await;
    assert_eq!((page, total), (vec!["gamma".to_string(), "ALPHA two".into()], 6));
    assert_eq!(
        list("displayName eq 'x'' or 1=1 --'", None, 10, 0).await,
        (vec![], 0),
        "values are bound, not spliced"
    );
    // What does not fit the collection is the client's mistake, told in OData's words.
    let refused = store
        .list_tenants(&ListQuery {
            filter: Some(odata::parse_filter("displayName eq 5").unwrap()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(&refused, StoreError::Query(_)), "{refused:?}");
    assert_eq!(
        refused.to_string(),
        "A binary operator with incompatible types was detected. Found operand types 'Edm.String' and 'Edm.Int32' for operator kind 'Equal'."
    );
}

async fn clock_offsets_are_compare_and_set(store: std::sync::Arc<dyn Store>) {
    create(store.as_ref(), "t", "T", Utc::now()).await;
    assert!(store.set_clock_offset("t", 0, 86_400_000_000).await.unwrap());
    assert!(
        !store.set_clock_offset("t", 0, 2 * 86_400_000_000).await.unwrap(),
        "a stale expectation loses"
    );
    assert_eq!(
        store.get_tenant("t").await.unwrap().unwrap().clock_offset_us,
        86_400_000_000
    );
    assert!(!store.set_clock_offset("missing", 0, 1).await.unwrap());
    assert!(
        store.set_clock_offset("t", 86_400_000_000, -1).await.is_err(),
        "the database refuses a negative offset"
    );
}

async fn apps_belong_to_one_tenant(store: std::sync::Arc<dyn Store>) {
    create(store.as_ref(), "a", "A", Utc::now()).await;
    create(store.as_ref(), "b", "B", Utc::now()).await;
    store.insert_app(&app("a", "shared-id")).await.unwrap();
    assert!(matches!(
        store.insert_app(&app("a", "shared-id")).await,
        Err(StoreError::Conflict(_))
    ));
    // The same client id in another tenant is another app.
    store.insert_app(&app("b", "shared-id")).await.unwrap();
    assert!(store.get_app("a", "boot-b").await.unwrap().is_none());
    let got = store.get_app("a", "shared-id").await.unwrap().unwrap();
    assert_eq!(got.permissions, vec!["User.Read.All".to_string()]);
    assert_eq!(store.list_apps("a").await.unwrap().len(), 2);
}

async fn the_first_signing_key_wins(store: std::sync::Arc<dyn Store>) {
    assert!(store.signing_keys().await.unwrap().is_empty());
    let first = SigningKeyRecord {
        kid: "k1".into(),
        private_key_pem: "pem1".into(),
        created_at: Utc::now(),
    };
    let second = SigningKeyRecord {
        kid: "k2".into(),
        private_key_pem: "pem2".into(),
        created_at: Utc::now(),
    };
    store.insert_signing_key_if_none(&first).await.unwrap();
    store.insert_signing_key_if_none(&second).await.unwrap();
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), ["k1"]);
}

async fn device_management_updates_are_compare_and_set(store: std::sync::Arc<dyn Store>) {
    create(store.as_ref(), "t", "T", Utc::now()).await;
    let mut rec = store.get_device_management("t").await.unwrap().unwrap();
    assert_eq!(rec.properties["settings"]["n"], 1);
    let stale = rec.clone();
    rec.properties = dm("t", 2).properties;
    assert!(store.update_device_management(&rec, &Effects::none()).await.unwrap());
    let mut lost = stale;
    lost.properties = dm("t", 3).properties;
    assert!(
        !store.update_device_management(&lost, &Effects::none()).await.unwrap(),
        "an update from a stale read is refused"
    );
    let now = store.get_device_management("t").await.unwrap().unwrap();
    assert_eq!(now.properties["settings"]["n"], 2);
    assert_eq!(now.revision, rec.revision + 1);
    assert!(store.get_device_management("other").await.unwrap().is_none());
}

async fn reset_and_delete_clear_what_the_tenant_owns(store: std::sync::Arc<dyn Store>) {
    create(store.as_ref(), "t", "T", Utc::now()).await;
    create(store.as_ref(), "keep", "Keep", Utc::now()).await;
    store.insert_app(&app("t", "extra")).await.unwrap();
    assert!(store.set_clock_offset("t", 0, 5).await.unwrap());
    let mut rec = store.get_device_management("t").await.unwrap().unwrap();
    rec.properties = dm("t", 9).properties;
    assert!(store.update_device_management(&rec, &Effects::none()).await.unwrap());

    assert!(store.reset_tenant("t", &dm("t", 1)).await.unwrap());
    let apps: Vec<String> = store
        .list_apps("t")
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.client_id)
        .collect();
    assert_eq!(apps, ["boot-t"]);
    assert_eq!(store.get_tenant("t").await.unwrap().unwrap().clock_offset_us, 0);
    assert_eq!(
        store.get_device_management("t").await.unwrap().unwrap().properties["settings"]["n"],
        1
    );
    assert!(!store.reset_tenant("missing", &dm("missing", 1)).await.unwrap());

    assert!(store.delete_tenant("t").await.unwrap());
    assert!(!store.delete_tenant("t").await.unwrap());
    assert!(store.get_tenant("t").await.unwrap().is_none());
    assert!(store.list_apps("t").await.unwrap().is_empty());
    assert!(store.get_device_management("t").await.unwrap().is_none());
    // The other tenant is untouched.
    assert_eq!(store.list_apps("keep").await.unwrap().len(), 1);
    assert!(store.get_device_management("keep").await.unwrap().is_some());
}
