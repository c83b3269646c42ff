"""What is known about each corpus and about the data, for the dataset card and the Croissant RAI fields.

Facts about the corpora come from their papers (cited here); facts about a version come from its tables. A
synthetic corpus (`Dataset.synthetic`) is described by its generator, never by the facts of the corpus whose layout
it imitates.
"""

from __future__ import annotations

import re
from typing import Any

CORPORA: dict[str, dict[str, Any]] = {
    "ravdess": {
        "name": "RAVDESS",
        "citation": "Livingstone SR, Russo FA (2018). The Ryerson Audio-Visual Database of Emotional Speech and Song "
        "(RAVDESS). PLoS ONE 13(5): e0196391. doi:10.1371/journal.pone.0196391",
        "url": "https://doi.org/10.5281/zenodo.1188976",
        "collection": "24 professional actors (12 female, 12 male) speaking and singing two lexically matched "
        "statements in North American English, recorded in a studio; each emotion posed at two intensities.",
        "collection_type": "Experiments (acted, lab recording)",
        "annotation": "The label is the emotion the actor was asked to express (coded in the file name: modality, "
        "vocal channel, emotion, intensity, statement, repetition, actor); the corpus authors validated the "
        "stimuli with untrained raters, whose ratings are not part of the files.",
        "annotators_per_item": "1 (the instructed emotion)",
        "annotations_creators": "expert-generated",
        "language": ["en"],
    },
    "dfew": {
        "name": "DFEW",
        "citation": "Jiang X et al. (2020). DFEW: A Large-Scale Database for Recognizing Dynamic Facial "
        "Expressions in the Wild. ACM Multimedia 2020. doi:10.1145/3394171.3413620",
        "url": "https://dfew-dataset.github.io/",
        "collection": "Clips cut from movies (in the wild): faces under varied pose, light and occlusion.",
        "collection_type": "Found media (movie clips)",
        "annotation": "Each clip was labelled by 10 trained annotators with one of 7 basic emotions; the vote "
        "counts are kept in clips.label_votes and the single label of the official 5-fold split files is the label.",
        "annotators_per_item": "10",
        "annotations_creators": "expert-generated",
        "language": [],
    },
    "mafw": {
        "name": "MAFW",
        "citation": "Liu Y et al. (2022). MAFW: A Large-scale, Multi-modal, Compound Affective Database for "
        "Dynamic Facial Expression Recognition in the Wild. ACM Multimedia 2022. doi:10.1145/3503161.3548190",
        "url": "https://mafw-database.github.io/MAFW/",
        "collection": "Clips from movies, TV dramas and short videos (in the wild), with audio where the source had "
        "it; about 1,100 of its clips were taken from DFEW.",
        "collection_type": "Found media (movie, TV and short-video clips)",
        "annotation": "Trained annotators gave each clip one of 11 single emotions (or a compound label, in "
        "clips.compound_labels) and a descriptive caption (clips.description; the Chinese text in native_fields); "
        "the label is the one of the official 5-fold split files.",
        "annotators_per_item": "11",
        "annotations_creators": "expert-generated",
        "language": ["en", "zh"],
    },
    "footage": {
        "name": "footage",
        "citation": "Footage collected by the operator of this pipeline (see its licence).",
        "url": None,
        "collection": "Video files dropped under the footage root, as the collector recorded them.",
        "collection_type": "Collected footage",
        "annotation": "Emotions, demographics and other fields from JSON sidecars or a folder annotations file, "
        "written by whoever collected the footage; free-text emotions are mapped to the canonical classes.",
        "annotators_per_item": "as annotated (sidecar files)",
        "annotations_creators": "other",
        "language": [],
    },
}

ENCODINGS = {
    "frames": "features.frames_jpeg: the n_frames sampled frames (uniform over the clip, segment centres; "
    "features.frame_indices and frame_times_s say which), JPEG, resized so the shorter side is frame_size pixels.",
    "crops": "features.face_crops_jpeg: per sampled frame the aligned face crop (crop_size square, JPEG), null "
    "where no face was found; features.face_boxes the box and score in stored-frame pixels, face_landmarks the 5 "
    "landmarks.",
    "audio": "features.audio_pcm16: the audio track resampled to 16 kHz mono, little-endian int16 PCM without a "
    "header (numpy.frombuffer(b, '<i2') / 32768 gives floats).",
    "log_mel": "features.log_mel: log10 mel power spectrogram, [frames][80 bins], 25 ms window, 10 ms hop, 16 kHz.",
    "egemaps": "features.egemaps: the 88 eGeMAPSv02 functionals from openSMILE.",
}

INTENDED_USES = [
    "Research on automatic emotion recognition from faces and voices, and benchmarking of such models under the "
    "corpora's published protocols (the splits table).",
    "Auditing such models for bias across demographic groups (the bias report and its tables).",
]
PROHIBITED_USES = [
    "Inferring the emotions of people in the workplace or in education institutions (EU AI Act, Regulation (EU) "
    "2024/1689, Article 5(1)(f): prohibited except for medical or safety reasons).",
    "Biometric categorisation of people by race, political opinion, trade-union membership, religion, sex life or "
    "sexual orientation (Article 5(1)(g)), and identifying or tracking the people in these clips.",
    "Any use outside a corpus's licence: RAVDESS is CC BY-NC-SA 4.0 (non-commercial); DFEW and MAFW are for "
    "academic research only under their EULAs and may not be redistributed.",
    "Decisions about individuals (hiring, grading, credit, policing, medical diagnosis) from predicted emotions: "
    "an emotion recognition system is high-risk under the EU AI Act (Annex III) where it is not prohibited.",
]
SOCIAL_IMPACT = (
    "Inferring emotions from facial expressions and voices rests on contested science: expressions are "
    "culture-, context- and person-dependent, and posed (RAVDESS) or film (DFEW, MAFW) expressions differ from "
    "everyday ones. Models trained on these data can misread people who are under-represented in them."
)
PERSONAL = (
    "Every clip shows or voices a person: faces and voices are biometric data (GDPR Article 4(14); special "
    "category data under Article 9 when processed to identify someone). The clips table holds subject ids "
    "('<corpus>:<id>', pseudonymous) and, where known, gender, age group and accent, each with its source "
    "(annotated, derived from the corpus's own coding, or estimated by a model). Subjects can be removed: the forget "
    "register (forgotten.json, only hashes of subject ids) leaves them out of every later version and every export."
)
MAINTENANCE = (
    "Versions are git tags of the data repository whose data DVC stores on the remote; a refresh (the "
    "emotion_dataset_refresh DAG, daily and when footage lands) publishes a new version only when the content "
    "changed and the quality gate passed. Older versions are history: they keep a forgotten subject's data until "
    "their tags and remote objects are deleted (`emopipe forget` lists them)."
)


def corpus_fact(corpus: str, key: str, synthetic: dict[str, str]) -> Any:
    """A fact about a corpus, or the generator's description for a synthetic one."""
    if corpus in synthetic:
        return {
            "collection": f"Generated, not recorded: {synthetic[corpus]}",
            "collection_type": "Synthetic (generated by a program)",
            "annotation": "The label is the emotion the generator assigned; nobody expressed or rated it.",
            "annotators_per_item": "0 (generated)",
            "annotations_creators": "machine-generated",
            "citation": "Generated by emopipe (emopipe.demo).",
            "language": [],
            "url": None,
            "name": f"{CORPORA.get(corpus, {}).get('name', corpus)} layout (synthetic)",
        }[key]
    return CORPORA.get(corpus, CORPORA["footage"])[key]


LICENSES = (  # a licence text -> the Hugging Face licence id (https://huggingface.co/docs/hub/repositories-licenses)
    (r"CC[ -]BY[ -]NC[ -]SA[ -]4\.0", "cc-by-nc-sa-4.0"),
    (r"CC[ -]BY[ -]NC[ -]4\.0", "cc-by-nc-4.0"),
    (r"CC[ -]BY[ -]SA[ -]4\.0", "cc-by-sa-4.0"),
    (r"CC[ -]BY[ -]4\.0", "cc-by-4.0"),
    (r"CC0", "cc0-1.0"),
)
LICENSE_URLS = {
    "cc-by-nc-sa-4.0": "https://creativecommons.org/licenses/by-nc-sa/4.0/",
    "cc-by-nc-4.0": "https://creativecommons.org/licenses/by-nc/4.0/",
    "cc-by-sa-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "cc-by-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "cc0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
}


def hf_license(texts: list[str]) -> dict[str, Any]:
    """The card's licence keys: one Hugging Face id when every corpus has the same known licence, else `other`."""
    ids = set()
    for text in texts:
        found = next((hf for pattern, hf in LICENSES if re.search(pattern, text, re.IGNORECASE)), None)
        ids.add(found)
    if len(ids) == 1 and None not in ids:
        return {"license": ids.pop()}
    return {
        "license": "other",
        "license_name": "per-corpus",
        "license_details": "; ".join(sorted(set(texts))),
    }
