//! Hand-written facts for the packages the `kubectl` binary does not link
//! (`apiextensions.k8s.io/v1`, `apiregistration.k8s.io/v1`): for every non-list field, how
//! upstream's Go struct (v1.33) declares it.
//!
//! `v` a value field without `omitempty` (always in JSON), `vo` a value field with
//! `omitempty`, `p` a pointer (present only when set). Lists, maps and `[]byte` need no
//! fact (they are absent when empty). Field names are the JSON names.

pub const PACKAGES: &[&str] = &[
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1",
    "k8s.io.kube_aggregator.pkg.apis.apiregistration.v1",
];

pub const FACTS: &[(&str, &str)] = &[
    // apiextensions.k8s.io/v1
    ("ConversionRequest", "uid:v desiredAPIVersion:v"),
    ("ConversionResponse", "uid:v result:v"),
    ("ConversionReview", "request:p response:p"),
    (
        "CustomResourceColumnDefinition",
        "name:v type:v format:vo description:vo priority:vo jsonPath:v",
    ),
    ("CustomResourceConversion", "strategy:v webhook:p"),
    ("CustomResourceDefinition", "metadata:v spec:v status:v"),
    (
        "CustomResourceDefinitionCondition",
        "type:v status:v lastTransitionTime:vo reason:vo message:vo",
    ),
    ("CustomResourceDefinitionList", "metadata:v"),
    (
        "CustomResourceDefinitionNames",
        "plural:v singular:vo kind:v listKind:vo",
    ),
    (
        "CustomResourceDefinitionSpec",
        "group:v names:v scope:v conversion:p preserveUnknownFields:vo",
    ),
    ("CustomResourceDefinitionStatus", "acceptedNames:v"),
    (
        "CustomResourceDefinitionVersion",
        "name:v served:v storage:v deprecated:vo deprecationWarning:p schema:p subresources:p",
    ),
    (
        "CustomResourceSubresourceScale",
        "specReplicasPath:v statusReplicasPath:v labelSelectorPath:p",
    ),
    ("CustomResourceSubresourceStatus", ""),
    ("CustomResourceSubresources", "status:p scale:p"),
    ("CustomResourceValidation", "openAPIV3Schema:p"),
    ("ExternalDocumentation", "description:vo url:vo"),
    (
        "JSONSchemaProps",
        "id:vo $schema:vo $ref:p description:vo type:vo format:vo title:vo default:p \
         maximum:p exclusiveMaximum:vo minimum:p exclusiveMinimum:vo maxLength:p minLength:p \
         pattern:vo maxItems:p minItems:p uniqueItems:vo multipleOf:p maxProperties:p \
         minProperties:p items:p not:p additionalProperties:p additionalItems:p \
         externalDocs:p example:p nullable:vo x-kubernetes-preserve-unknown-fields:p \
         x-kubernetes-embedded-resource:vo x-kubernetes-int-or-string:vo \
         x-kubernetes-list-type:p x-kubernetes-map-type:p",
    ),
    ("SelectableField", "jsonPath:v"),
    ("ServiceReference", "namespace:v name:v path:p port:p"),
    (
        "ValidationRule",
        "rule:v message:vo messageExpression:vo reason:p fieldPath:vo optionalOldSelf:p",
    ),
    ("WebhookClientConfig", "url:p service:p"),
    ("WebhookConversion", "clientConfig:p"),
    // apiregistration.k8s.io/v1 (its ServiceReference differs from apiextensions')
    ("APIService", "metadata:v spec:v status:v"),
    (
        "APIServiceCondition",
        "type:v status:v lastTransitionTime:vo reason:vo message:vo",
    ),
    ("APIServiceList", "metadata:v"),
    (
        "APIServiceSpec",
        "service:p group:vo version:vo insecureSkipTLSVerify:vo groupPriorityMinimum:v \
         versionPriority:v",
    ),
    ("APIServiceStatus", ""),
    (
        "apiregistration.ServiceReference",
        "namespace:vo name:vo port:p",
    ),
];

/// Messages of these packages with their own JSON form.
pub const SPECIALS: &[(&str, &str)] = &[
    ("JSON", "Json"),
    ("JSONSchemaPropsOrArray", "SchemaOrArray"),
    ("JSONSchemaPropsOrBool", "SchemaOrBool"),
    ("JSONSchemaPropsOrStringArray", "SchemaOrStringArray"),
];

/// The facts of one message (`package` is the proto package).
pub fn lookup(package: &str, message: &str) -> Option<&'static str> {
    let scoped = if package.contains("apiregistration") {
        format!("apiregistration.{message}")
    } else {
        message.to_string()
    };
    FACTS
        .iter()
        .find(|(m, _)| *m == scoped)
        .or_else(|| FACTS.iter().find(|(m, _)| *m == message))
        .map(|(_, f)| *f)
}
