//! CoreML `.mlmodel` identification: a strict test of the `Model` protobuf's shape.
//!
//! CoreML has no magic, but its `Model` message (coremltools `mlmodel/format/Model.proto`)
//! has a shape random bytes and other protobufs do not: field 1 `specificationVersion` first
//! (a varint, 1 to 32 here; Apple is at 9), then only `description` (2, a message that parses),
//! `isUpdatable` (10) and exactly one model-type field from the `Type` oneof (200 and up, listed
//! in [`MODEL_TYPES`]). ONNX and SavedModel protobufs also start with field 1 but never carry
//! a field numbered 200 or more, so they cannot match; neither can a pickle (0x08 is no pickle
//! opcode, so a pickle loader fails on the first byte, and the pickle probe runs anyway).
//!
//! An identified model is "identified, not vouched for" (EXE003): its layers and weights are
//! not verified. A `customModel` names a class the app must provide, a `linkedModel` loads
//! another file: both are said in the report.

use super::protobuf::fields;

/// Model-type fields of `Model.Type`, with their names.
pub const MODEL_TYPES: &[(u32, &str)] = &[
    (200, "pipelineClassifier"),
    (201, "pipelineRegressor"),
    (202, "pipeline"),
    (300, "glmRegressor"),
    (301, "supportVectorRegressor"),
    (302, "treeEnsembleRegressor"),
    (303, "neuralNetworkRegressor"),
    (304, "bayesianProbitRegressor"),
    (400, "glmClassifier"),
    (401, "supportVectorClassifier"),
    (402, "treeEnsembleClassifier"),
    (403, "neuralNetworkClassifier"),
    (404, "kNearestNeighborsClassifier"),
    (500, "neuralNetwork"),
    (501, "itemSimilarityRecommender"),
    (502, "mlProgram"),
    (555, "customModel"),
    (556, "linkedModel"),
    (560, "classConfidenceThresholding"),
    (600, "oneHotEncoder"),
    (601, "imputer"),
    (602, "featureVectorizer"),
    (603, "dictVectorizer"),
    (604, "scaler"),
    (606, "categoricalMapping"),
    (607, "normalizer"),
    (609, "arrayFeatureExtractor"),
    (610, "nonMaximumSuppression"),
    (900, "identity"),
    (2000, "textClassifier"),
    (2001, "wordTagger"),
    (2002, "visionFeaturePrint"),
    (2003, "soundAnalysisPreprocessing"),
    (2004, "gazetteer"),
    (2005, "wordEmbedding"),
    (2006, "audioFeaturePrint"),
    (3000, "serializedModel"),
];
const CUSTOM_MODEL: u32 = 555;
/// `CustomModel.className`.
const CUSTOM_CLASS_NAME: u32 = 10;

/// What the test found: enough for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreMl {
    pub specification_version: u64,
    pub model_type: &'static str,
    /// `CustomModel.className`, for a custom model.
    pub custom_class: Option<String>,
}

/// Identifies a CoreML `Model` strictly (see the module docs); `None` for anything else.
pub fn identify(data: &[u8]) -> Option<CoreMl> {
    if data.first() != Some(&0x08) {
        return None;
    }
    let mut version = None;
    let mut model: Option<(u32, &[u8])> = None;
    for (index, field) in fields(data).enumerate() {
        let field = field.ok()?;
        match (field.number, index) {
            (1, 0) => version = field.varint().filter(|v| (1..=32).contains(v)),
            (2, _) => {
                let description = field.bytes()?;
                if !fields(description).all(|f| f.is_ok()) {
                    return None;
                }
            }
            (10, _) => {
                field.varint()?;
            }
            (number, _) => {
                let known = MODEL_TYPES.iter().any(|(n, _)| *n == number);
                if !known || model.is_some() {
                    return None;
                }
                model = Some((number, field.bytes()?));
            }
        }
    }
    let (number, body) = model?;
    let model_type = MODEL_TYPES.iter().find(|(n, _)| *n == number)?.1;
    let custom_class = (number == CUSTOM_MODEL)
        .then(|| {
            super::protobuf::last_bytes(body, CUSTOM_CLASS_NAME)
                .ok()
                .flatten()
        })
        .flatten()
        .map(|b| String::from_utf8_lossy(b).chars().take(200).collect());
    Some(CoreMl {
        specification_version: version?,
        model_type,
        custom_class,
    })
}

/// The report's description of an identified model.
pub fn describe(model: &CoreMl) -> String {
    let extra = match (&model.custom_class, model.model_type) {
        (Some(class), _) => format!("; custom model class `{class}` must be provided by the app"),
        (None, "customModel") => "; a custom model whose class the app must provide".into(),
        (None, "linkedModel") => "; links to another model file, loaded at run time".into(),
        _ => String::new(),
    };
    format!(
        "CoreML model, specification version {}, type `{}`{extra}",
        model.specification_version, model.model_type
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u32, bytes: &[u8]) -> Vec<u8> {
        let mut out = varint(u64::from(number) << 3 | 2);
        out.extend(varint(bytes.len() as u64));
        out.extend_from_slice(bytes);
        out
    }

    fn varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        while v >= 0x80 {
            out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
        out
    }

    /// `Model{specificationVersion: 4, description: {input: {name: "x"}}, <type>: body}`.
    fn model(type_field: u32, body: &[u8]) -> Vec<u8> {
        let description = field(1, &field(1, b"x"));
        [
            &[0x08, 0x04][..],
            &field(2, &description),
            &field(type_field, body),
        ]
        .concat()
    }

    #[test]
    fn a_neural_network_is_identified() {
        let data = model(500, &field(1, b"layer"));
        let found = identify(&data).unwrap();
        assert_eq!(
            (found.specification_version, found.model_type),
            (4, "neuralNetwork")
        );
        assert!(describe(&found).contains("version 4, type `neuralNetwork`"));
    }

    #[test]
    fn a_custom_model_names_its_class() {
        let data = model(555, &field(10, b"MyNativeModel"));
        let found = identify(&data).unwrap();
        assert_eq!(found.custom_class.as_deref(), Some("MyNativeModel"));
        assert!(describe(&found).contains("`MyNativeModel` must be provided"));
    }

    #[test]
    fn other_protobufs_and_near_misses_are_not_coreml() {
        assert_eq!(identify(&model(7, b"")), None, "an ONNX-like graph field");
        assert_eq!(identify(&model(499, b"")), None, "unknown type field");
        let two = [model(500, b""), field(502, b"")].concat();
        assert_eq!(identify(&two), None, "two model types");
        assert_eq!(identify(&[0x08, 0x04]), None, "no model type");
        assert_eq!(
            identify(&[&[0x08, 0x00][..], &field(500, b"")].concat()),
            None,
            "version 0"
        );
        assert_eq!(
            identify(&[&field(500, b"")[..], &[0x08, 0x04]].concat()),
            None,
            "version not first"
        );
        let data = model(500, &field(1, b"layer"));
        for cut in 0..data.len() {
            let _ = identify(&data[..cut]);
        }
        assert_eq!(identify(&data[..data.len() - 1]), None);
        assert_eq!(identify(b"\x80\x04\x95"), None);
    }
}
