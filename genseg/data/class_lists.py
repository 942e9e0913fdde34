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

# SUN RGB-D: the 475 images of MSeg's sunrgbd-37 val list (mseg-api
# mseg/dataset_lists/sunrgbd-37/list/val.txt, commit fd93c4e325392bbdef766de35304973ee70b3f57): numbers <n> of
# image/test/img-<n:06d>.jpg, in that list's (ascending) order.
SUNRGBD_MSEG_VAL = (
    1, 25, 26, 64, 94, 95, 100, 101, 113, 127, 137, 147, 152, 154, 161, 165, 169, 175, 181, 198, 200, 202, 208, 210,
    217, 238, 257, 276, 281, 282, 293, 308, 330, 335, 344, 376, 405, 424, 431, 434, 438, 450, 461, 470, 498, 505,
    509, 526, 538, 545, 551, 561, 574, 578, 587, 592, 596, 605, 606, 607, 624, 638, 648, 651, 660, 672, 692, 697,
    699, 706, 715, 731, 733, 737, 739, 740, 742, 756, 757, 771, 798, 803, 805, 808, 817, 822, 828, 838, 846, 849,
    852, 861, 870, 895, 903, 904, 909, 929, 932, 942, 946, 953, 957, 968, 974, 1021, 1029, 1034, 1041, 1054, 1072,
    1091, 1112, 1132, 1135, 1153, 1160, 1163, 1168, 1180, 1199, 1205, 1208, 1209, 1210, 1220, 1242, 1244, 1309, 1332,
    1354, 1385, 1393, 1401, 1430, 1435, 1439, 1448, 1469, 1470, 1473, 1480, 1484, 1489, 1533, 1553, 1562, 1563, 1583,
    1590, 1606, 1635, 1642, 1646, 1654, 1672, 1673, 1685, 1691, 1702, 1708, 1721, 1732, 1741, 1748, 1770, 1778, 1793,
    1796, 1806, 1824, 1839, 1848, 1850, 1863, 1864, 1869, 1872, 1897, 1909, 1911, 1914, 1955, 1957, 1964, 1968, 1972,
    1976, 1988, 2004, 2009, 2022, 2024, 2041, 2047, 2052, 2060, 2106, 2108, 2121, 2122, 2136, 2164, 2174, 2177, 2188,
    2196, 2198, 2222, 2223, 2238, 2252, 2258, 2262, 2270, 2275, 2283, 2293, 2297, 2305, 2323, 2336, 2345, 2354, 2372,
    2376, 2388, 2390, 2392, 2406, 2419, 2432, 2436, 2447, 2464, 2468, 2493, 2497, 2503, 2537, 2547, 2548, 2563, 2596,
    2600, 2604, 2608, 2611, 2647, 2660, 2661, 2666, 2672, 2680, 2682, 2684, 2686, 2712, 2722, 2724, 2733, 2746, 2751,
    2758, 2764, 2768, 2776, 2787, 2788, 2799, 2812, 2814, 2851, 2853, 2861, 2868, 2882, 2894, 2898, 2904, 2905, 2909,
    2931, 2935, 2938, 2957, 2958, 2966, 2978, 2988, 2990, 2996, 2998, 3000, 3025, 3027, 3058, 3086, 3092, 3108, 3115,
    3117, 3124, 3126, 3129, 3147, 3166, 3187, 3188, 3192, 3205, 3209, 3220, 3222, 3225, 3265, 3274, 3280, 3291, 3292,
    3293, 3299, 3300, 3311, 3332, 3338, 3362, 3396, 3397, 3399, 3414, 3420, 3422, 3442, 3446, 3452, 3456, 3464, 3466,
    3467, 3469, 3487, 3511, 3514, 3517, 3532, 3534, 3561, 3592, 3612, 3613, 3623, 3624, 3643, 3666, 3675, 3679, 3687,
    3696, 3718, 3730, 3735, 3746, 3752, 3763, 3779, 3782, 3794, 3809, 3812, 3822, 3855, 3861, 3869, 3887, 3894, 3899,
    3913, 3919, 3929, 3930, 3943, 3946, 3969, 3970, 3989, 4000, 4010, 4012, 4041, 4044, 4048, 4052, 4072, 4076, 4090,
    4100, 4104, 4123, 4164, 4181, 4183, 4188, 4227, 4233, 4260, 4263, 4273, 4298, 4306, 4318, 4334, 4343, 4354, 4370,
    4371, 4374, 4379, 4388, 4394, 4404, 4418, 4420, 4421, 4424, 4445, 4462, 4465, 4470, 4485, 4497, 4504, 4516, 4525,
    4526, 4567, 4606, 4652, 4653, 4681, 4691, 4700, 4703, 4704, 4721, 4724, 4736, 4737, 4777, 4791, 4846, 4852, 4860,
    4864, 4871, 4877, 4883, 4897, 4904, 4906, 4931, 4932, 4940, 4951, 4956, 4962, 4969, 4970, 4982, 4985, 4999, 5022,
    5026, 5029, 5038,
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
