"""Class lists of the MSeg datasets that :mod:`genseg.data.layouts` reads, in each label encoding's order.

Sources: each dataset's published label definition (cited per list); the MSeg names of the same
classes are in ``genseg/data/taxonomies/mseg/`` (its README says where a name differs).
"""

from __future__ import annotations

# Mapillary Vistas v1.2 (config.json "labels", ids 0..64; 65 "Unlabeled" is ignored).
# Same order as mseg-api mseg/dataset_lists/mapillary-public65/mapillary-public65_names.txt.
MAPILLARY_CLASSES = (
    "Bird", "Ground Animal", "Curb", "Fence", "Guard Rail", "Barrier", "Wall", "Bike Lane", "Crosswalk - Plain",
    "Curb Cut", "Parking", "Pedestrian Area", "Rail Track", "Road", "Service Lane", "Sidewalk", "Bridge", "Building",
    "Tunnel", "Person", "Bicyclist", "Motorcyclist", "Other Rider", "Lane Marking - Crosswalk",
    "Lane Marking - General", "Mountain", "Sand", "Sky", "Snow", "Terrain", "Vegetation", "Water", "Banner", "Bench",
    "Bike Rack", "Billboard", "Catch Basin", "CCTV Camera", "Fire Hydrant", "Junction Box", "Mailbox", "Manhole",
    "Phone Booth", "Pothole", "Street Light", "Pole", "Traffic Sign Frame", "Utility Pole", "Traffic Light",
    "Traffic Sign (Back)", "Traffic Sign (Front)", "Trash Can", "Bicycle", "Boat", "Bus", "Car", "Caravan",
    "Motorcycle", "On Rails", "Other Vehicle", "Trailer", "Truck", "Wheeled Slow", "Car Mount", "Ego Vehicle",
)  # fmt: skip

# COCO panoptic 2017 (panoptic_coco_categories.json, 133 categories) in category-id order, i.e. the
# contiguous ids 0..132 of detectron2's datasets/prepare_coco_semantic_annos_from_panoptic_annos.py:
# the 80 thing classes, then the 53 stuff classes (ids 92..200).
COCO_PANOPTIC_THINGS = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)  # fmt: skip
COCO_PANOPTIC_STUFF = (
    "banner", "blanket", "bridge", "cardboard", "counter", "curtain", "door-stuff", "floor-wood", "flower", "fruit",
    "gravel", "house", "light", "mirror-stuff", "net", "pillow", "platform", "playingfield", "railroad", "river",
    "road", "roof", "sand", "sea", "shelf", "snow", "stairs", "tent", "towel", "wall-brick", "wall-stone",
    "wall-tile", "wall-wood", "water-other", "window-blind", "window-other", "tree-merged", "fence-merged",
    "ceiling-merged", "sky-other-merged", "cabinet-merged", "table-merged", "floor-other-merged", "pavement-merged",
    "mountain-merged", "grass-merged", "dirt-merged", "paper-merged", "food-other-merged", "building-other-merged",
    "rock-merged", "wall-other-merged", "rug-merged",
)  # fmt: skip
COCO_PANOPTIC_CLASSES = COCO_PANOPTIC_THINGS + COCO_PANOPTIC_STUFF

# PASCAL Context, 60 classes (background + the 59 most frequent), as mmsegmentation's
# tools/dataset_converters/pascal_context.py writes them: 0 background, 1..59 alphabetical.
PASCAL_CONTEXT_CLASSES = (
    "background", "aeroplane", "bag", "bed", "bedclothes", "bench", "bicycle", "bird", "boat", "book", "bottle",
    "building", "bus", "cabinet", "car", "cat", "ceiling", "chair", "cloth", "computer", "cow", "cup", "curtain",
    "dog", "door", "fence", "floor", "flower", "food", "grass", "ground", "horse", "keyboard", "light", "motorbike",
    "mountain", "mouse", "person", "plate", "platform", "pottedplant", "road", "rock", "sheep", "shelves",
    "sidewalk", "sign", "sky", "snow", "sofa", "table", "track", "train", "tree", "truck", "tvmonitor", "wall",
    "water", "window", "wood",
)  # fmt: skip

# Cityscapes label ids (cityscapesscripts/helpers/labels.py) -> train ids 0..18; every other id is ignored.
# KITTI semantics and WildDash annotate in these label ids.
CITYSCAPES_LABEL_TO_TRAIN = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13,
    27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip

# ScanNet v2 2D benchmark: the 20 evaluated classes as NYU40 ids (BenchmarkScripts util: VALID_CLASS_IDS)
# and their names (CLASS_LABELS), in that order; every other id (0 unannotated, the other NYU40 classes)
# is ignored.
SCANNET_NYU40_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)
SCANNET_CLASSES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture",
    "counter", "desk", "curtain", "refrigerator", "shower curtain", "toilet", "sink", "bathtub", "otherfurniture",
)  # fmt: skip

# SUN RGB-D, 37 classes (SUNRGBDtoolbox seg37list; 0 is unlabeled), as in
# mseg-api mseg/dataset_lists/sunrgbd-37/sunrgbd-37_names.txt.
SUNRGBD_CLASSES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture",
    "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror", "floor mat", "clothes",
    "ceiling", "books", "refridgerator", "television", "paper", "towel", "shower curtain", "box", "whiteboard",
    "person", "night stand", "toilet", "sink", "lamp", "bathtub", "bag",
)  # fmt: skip

# IDD (full, not IDD-Lite): the 39 classes MSeg trains on, in the order of
# mseg-api mseg/dataset_lists/idd-39/idd-39_names.txt: AutoNUE's label ids 0..39
# (public-code helpers/anue_labels.py) without 35 "unlabeled".
IDD_CLASSES = (
    "road", "parking", "drivable fallback", "sidewalk", "rail track", "non-drivable fallback", "person", "animal",
    "rider", "motorcycle", "bicycle", "autorickshaw", "car", "truck", "bus", "caravan", "trailer", "train",
    "vehicle fallback", "curb", "wall", "fence", "guard rail", "billboard", "traffic sign", "traffic light", "pole",
    "polegroup", "obs-str-bar-fallback", "building", "bridge", "tunnel", "vegetation", "sky", "fallback background",
    "ego vehicle", "rectification border", "out of roi", "license plate",
)  # fmt: skip

# KITTI semantics: the 50 images of MSeg's KITTI test split (mseg-api
# mseg/dataset_lists/kitti-19/list/val.txt, training/image_2/<id>_10.png), in that list's order.
KITTI_MSEG_VAL = (
    52, 26, 76, 43, 24, 3, 169, 49, 149, 131, 190, 30, 121, 115, 175, 8, 60, 128, 1, 57, 22, 61, 63, 7, 196,
    141, 86, 96, 68, 50, 142, 157, 156, 139, 146, 101, 20, 178, 25, 134, 71, 129, 144, 192, 79, 133, 137, 72, 140, 37,
)  # fmt: skip
