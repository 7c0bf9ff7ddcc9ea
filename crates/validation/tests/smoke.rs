use rkube_validation::*;
use serde_json::json;

#[test]
fn smoke() {
    let gvk = Gvk::new("apps", "v1", "Deployment");
    let mut d = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default"},
      "spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"nginx","image":"nginx","ports":[{"containerPort":80}],"resources":{"limits":{"cpu":"1000m"}}}]}}}});
    default_object(gvk, &mut d).unwrap();
    println!("{}", serde_json::to_string_pretty(&d).unwrap());
    let errs = validate_create(gvk, &d).unwrap();
    for e in &errs { println!("{e}"); }
    assert!(errs.is_empty());
}
