mod common;
use common::*;
use rkube_runtime::*;

#[tokio::test(flavor = "multi_thread")]
async fn smoke() {
    let h = Harness::new();
    let sb = h.sandbox("smoke").await;
    let id = h.run(&sb, container("c", "testapp", &["/testapp", "args", "a", "b"])).await;
    let st = h.wait_exited(&id).await;
    eprintln!("{st:?}");
    eprintln!("{}", log_text(st.log_path.as_ref().unwrap()));
    h.finish().await;
}
